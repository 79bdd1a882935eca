"""Orchestration: jobs made of trainings and evaluations (the layer above ``engine``, ``eval``
and ``viz``, which never import it).

- :mod:`.sweep`: one training run per (grid point, seed), evaluated and summarised over seeds;
  the jobs go to local processes or a Slurm cluster through submitit (``whatwhere sweep``).
- :mod:`.reproduce`: whole studies (``whatwhere reproduce``): their trainings, evaluations and
  figures; :mod:`.report`: the self-contained HTML and Markdown report of their results.
"""
