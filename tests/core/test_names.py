"""One "did you mean" text for every unknown name."""

from convzoo.core.names import close_matches, unknown_name_message


def test_close_matches_best_first():
    assert close_matches("resnt18", ["resnet18", "resnet50", "vgg11"])[0] == "resnet18"
    assert close_matches("zzz", ["resnet18"]) == []


def test_unknown_name_message_suggests_and_lists():
    message = unknown_name_message("op", "shfit", ["shift", "conv", "cp"])
    assert message == "unknown op 'shfit'; did you mean 'shift'? (known: conv, cp, shift)"
    many = unknown_name_message("model", "q", [f"m{i:02d}" for i in range(20)], shown=3)
    assert many == "unknown model 'q' (known: m00, m01, m02, … (20 in all))"
