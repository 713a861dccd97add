"""The task registry: every task follows the Task contract, options and models are checked before any data loads."""

import pytest

from convzoo.registry import TASKS
from convzoo.train import TrainConfig, get_task
from convzoo.train.task import Task


def test_the_tasks_of_the_trainer_are_registered():
    assert {"classify", "sr", "node", "recommend"} <= set(TASKS.names())
    for name in TASKS.names():
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name
        assert task.model_kinds and task.primary


def test_an_unknown_task_suggests_close_names():
    with pytest.raises(ValueError, match="unknown task 'classfy'.*classify"):
        TrainConfig(task="classfy")


def test_an_option_the_task_does_not_take_is_refused_with_those_it_takes():
    options = "affinity_weight, augment, base, patch, residual, sampler, samples, scale, teacher, teacher_weight"
    with pytest.raises(ValueError, match=rf"task 'sr' takes no option 'k' \(its options: {options}\)"):
        TrainConfig(task="sr", model="espcn", options={"k": 3})
    with pytest.raises(ValueError, match="scale must be one of 2, 3, 4, got 5"):
        TrainConfig(task="sr", model="espcn", options={"scale": 5})


def test_the_recipe_fills_only_what_the_user_left_unset():
    config = TrainConfig(task="sr", model="espcn")
    assert (config.optimizer, config.lr, config.weight_decay) == ("adamw", 5e-4, 0.0)
    config = TrainConfig(task="sr", model="espcn", lr=1e-3, optimizer="sgd")
    assert (config.optimizer, config.lr) == ("sgd", 1e-3)
    assert TrainConfig().optimizer == "sgd" and TrainConfig().lr == 0.05  # classify as it always was


def test_a_model_of_another_task_is_refused_before_data_loads():
    from convzoo.train import train

    with pytest.raises(ValueError, match="'resnet20' is a classify model; task 'sr' trains sr models"):
        train(TrainConfig(task="sr", model="resnet20", progress=False))
