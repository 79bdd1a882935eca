"""Orchestration: whole studies (`whatwhere reproduce`), their trainings, evaluations, figures and report."""
