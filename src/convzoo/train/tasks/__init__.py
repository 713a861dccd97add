"""The trainer's tasks, one file each, registered in ``convzoo.registry.TASKS`` (see ``convzoo.train.task``).

The registry imports every module of this package on its first lookup, so adding a task is adding a file.
"""
