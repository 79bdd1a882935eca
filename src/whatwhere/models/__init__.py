"""Models: pure ``nn.Module`` s that know nothing about training.

- :mod:`.what`: the What LeNet (28×28 fovea);
- :mod:`.where`: the Where MLP and the Where model (retina -> 240 collicular logits);
- :mod:`.stn`: the spatial transformers (STN-28, STN-128, ATN, POLO-ATN, convPOLO-ATN);
- :mod:`.agent`: the What/Where saccade loop;
- :mod:`.ram`: the recurrent attention model and the FC / conv baselines of Mnih et al. 2014;
- :mod:`.st_cnn`: ST-CNN / ST-FCN and the CNN baseline of Jaderberg et al. 2015 (translated
  cluttered MNIST);
- :mod:`.registry`: model names -> constructors (:func:`create_model`);
- :mod:`.interface`: the typed contracts (:class:`Classifier`, :class:`GlimpseModel`,
  :class:`SaccadicModel`).
"""

from whatwhere.models.agent import Agent, SaccadeTrace
from whatwhere.models.interface import Classifier, GlimpseModel, SaccadicModel, is_glimpse_model, is_saccadic
from whatwhere.models.ram import RAM, ConvNet, FCNet, RAMTrace
from whatwhere.models.registry import MODELS, ModelSpec, create_model, register_model
from whatwhere.models.st_cnn import STCNN, TCConvNet
from whatwhere.models.stn import ATN, STN28, STN128, ConvPoloATN, PoloATN, What128
from whatwhere.models.what import WhatNet
from whatwhere.models.where import Where, WhereNet

__all__ = [
    "Agent",
    "SaccadeTrace",
    "Classifier",
    "GlimpseModel",
    "SaccadicModel",
    "is_glimpse_model",
    "is_saccadic",
    "MODELS",
    "ModelSpec",
    "create_model",
    "register_model",
    "ATN",
    "STCNN",
    "TCConvNet",
    "STN28",
    "STN128",
    "ConvPoloATN",
    "PoloATN",
    "What128",
    "WhatNet",
    "Where",
    "WhereNet",
    "RAM",
    "RAMTrace",
    "FCNet",
    "ConvNet",
]
