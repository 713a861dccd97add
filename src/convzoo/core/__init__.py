"""The ground floor: helpers every other part of convzoo uses, importing nothing else of convzoo.

- :mod:`convzoo.core.validate`: argument checks that raise the project's one message form;
- :mod:`convzoo.core.conv`: N-d convolution helpers (``conv_nd``, ``same_padding``);
- :mod:`convzoo.core.init`: initialisers and the drop-path schedule;
- :mod:`convzoo.core.files`: atomic, durable file writes;
- :mod:`convzoo.core.options`: the one ``KEY=VALUE`` parser of the command line and configs;
- :mod:`convzoo.core.names`: "did you mean" suggestions.
"""

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.files import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text
from convzoo.core.names import close_matches, unknown_name_message
from convzoo.core.options import parse_assignment, parse_assignments, parse_value
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

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_choice",
    "check_conv_args",
    "check_dim",
    "check_groups",
    "check_int",
    "check_number",
    "check_odd",
    "close_matches",
    "conv_nd",
    "is_int",
    "ntuple",
    "parse_assignment",
    "parse_assignments",
    "parse_value",
    "same_padding",
    "unknown_name_message",
]
