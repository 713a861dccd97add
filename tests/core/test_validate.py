"""The one validation module: each check accepts what it should and names owner, argument and value otherwise."""

import math

import pytest

from convzoo.core.validate import (
    check_choice,
    check_conv_args,
    check_dim,
    check_groups,
    check_int,
    check_number,
    check_odd,
    is_int,
    ntuple,
)


def test_is_int_refuses_bools_and_floats():
    assert is_int(3) and is_int(-1) and is_int(0)
    assert not is_int(True) and not is_int(3.0) and not is_int("3") and not is_int(None)


@pytest.mark.parametrize("value", [1, 7, 10**6])
def test_check_int_accepts_positive_ints(value):
    assert check_int(value, "groups", "conv") == value


@pytest.mark.parametrize("value", [0, -2, True, 2.0, "2", None])
def test_check_int_refuses_with_the_project_message(value):
    with pytest.raises(ValueError, match=rf"^conv: groups must be a positive int, got {value!r}$"):
        check_int(value, "groups", "conv")


def test_check_int_bounds_are_named():
    assert check_int(0, "depth", "tdnn", low=0) == 0
    with pytest.raises(ValueError, match=r"tdnn: depth must be an int ≥ 0, got -1"):
        check_int(-1, "depth", "tdnn", low=0)
    with pytest.raises(ValueError, match=r"lorentz_conv: in_channels must be an int ≥ 2, got 1"):
        check_int(1, "in_channels", "lorentz_conv", low=2)
    with pytest.raises(ValueError, match=r"x: order must be an int in \[1, 3\], got 4"):
        check_int(4, "order", "x", high=3)


def test_check_odd():
    assert check_odd(5, "kernel_size", "op") == 5
    for bad in (4, 0, -3, True, 3.0):
        with pytest.raises(ValueError, match=rf"op: kernel_size must be an odd int ≥ 1, got {bad!r}"):
            check_odd(bad, "kernel_size", "op")


def test_check_number_intervals():
    assert check_number(0.5, "p", "drop", low=0.0, high=1.0, low_open=False, high_open=True) == 0.5
    assert check_number(3, "scale", "op") == 3
    with pytest.raises(ValueError, match=r"drop: p must be a number in \[0, 1\), got 1.0"):
        check_number(1.0, "p", "drop", low=0.0, high=1.0, low_open=False, high_open=True)
    with pytest.raises(ValueError, match=r"op: scale must be a number > 0, got 0"):
        check_number(0, "scale", "op")
    for bad in (True, math.nan, math.inf, "1", None):
        with pytest.raises(ValueError, match="op: scale must be a number > 0"):
            check_number(bad, "scale", "op")
    assert check_number(-4.0, "b", "eca", low=None) == -4.0
    with pytest.raises(ValueError, match=r"eca: b must be a finite number, got nan"):
        check_number(math.nan, "b", "eca", low=None)


def test_check_choice_lists_the_choices():
    assert check_choice("xnor", ("bwn", "xnor"), "mode", "binary") == "xnor"
    with pytest.raises(ValueError, match=r"binary: mode must be one of 'bwn', 'xnor', got 'and'"):
        check_choice("and", ("bwn", "xnor"), "mode", "binary")


def test_check_groups_names_every_count():
    assert check_groups(3, "conv", in_channels=6, out_channels=9) == 3
    with pytest.raises(ValueError, match=r"conv: in_channels \(8\) and out_channels \(6\) must both be divisible"):
        check_groups(4, "conv", in_channels=8, out_channels=6)
    with pytest.raises(ValueError, match=r"shuffle: channels \(5\) must be divisible by groups \(2\)"):
        check_groups(2, "shuffle", channels=5)
    with pytest.raises(ValueError, match=r"conv: groups must be a positive int, got 0"):
        check_groups(0, "conv", in_channels=4)


def test_check_dim():
    assert check_dim(3, "op") == 3
    with pytest.raises(ValueError, match=r"op: dim must be 1, 2 or 3, got 4"):
        check_dim(4, "op")
    with pytest.raises(ValueError, match=r"op: dim must be 2, got 1"):
        check_dim(1, "op", dims=(2,))


def test_ntuple():
    assert ntuple(3, 2, "kernel_size", "op") == (3, 3)
    assert ntuple((3, 5), 2, "kernel_size", "op") == (3, 5)
    with pytest.raises(TypeError, match="op: kernel_size must be an int or a tuple of 2 ints, got True"):
        ntuple(True, 2, "kernel_size", "op")
    with pytest.raises(ValueError, match=r"op: kernel_size must be an int or a tuple of 3 ints for dim=3"):
        ntuple((3, 3), 3, "kernel_size", "op")


def test_check_conv_args_is_the_op_contract():
    assert check_conv_args("op", 4, 8, 3, (1, 2), 2) == ((3, 3), (1, 2))
    with pytest.raises(ValueError, match=r"op: in_channels must equal out_channels .* got 4 -> 8"):
        check_conv_args("op", 4, 8, 3, 1, 2, same_channels=True)
    with pytest.raises(ValueError, match=r"op: kernel_size must be odd for symmetric 'same' padding, got 4"):
        check_conv_args("op", 4, 8, 4, 1, 2)
    assert check_conv_args("op", 4, 8, 4, 1, 1, odd_kernel=False) == ((4,), (1,))
    with pytest.raises(ValueError, match=r"op: stride must be at most 2, got 3"):
        check_conv_args("op", 4, 8, 3, 3, 2, max_stride=2)
    with pytest.raises(ValueError, match=r"op: out_channels must be a positive int, got 0"):
        check_conv_args("op", 4, 0, 3, 1, 2)


def test_is_number_is_a_finite_real_that_is_not_a_bool():
    from convzoo.core.validate import is_number

    assert is_number(1) and is_number(-0.5) and is_number(0)
    for bad in (True, math.nan, math.inf, -math.inf, "1", None, 1j):
        assert not is_number(bad), bad
