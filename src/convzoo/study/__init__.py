"""``convzoo study``: train one backbone per operator, measure each, and report accuracy against latency."""

from convzoo.study.runner import DEFAULT_OPS, StudyConfig, StudyInterrupted, StudyRow, run_study

__all__ = ["DEFAULT_OPS", "StudyConfig", "StudyInterrupted", "StudyRow", "run_study"]
