"""Suite files are checked against a schema before anything runs: one clear message per wrong field,
naming the entry and the field; entry folders always lie inside --out."""
import pytest

from covsde.cli import main
from covsde.common.errors import CovsdeInputError
from covsde.validate.suite import entry_folder, load_suite

GOOD = '''[defaults]
T = 0.25
V0 = [[1.0, 0.2], [0.2, 1.0]]
widths = [16]
[[entry]]
name = "mlp"
variant = "mlp"
'''


def test_the_good_file_loads(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(GOOD)
    name, entries = load_suite(str(f))
    assert name == "s" and entries[0]["widths"] == [16] and entries[0]["V0"] == [[1.0, 0.2], [0.2, 1.0]]


BAD = [
    (GOOD.replace("[[entry]]", "[entry]"), "[[entry]]"),
    (GOOD + 'set = "gamma=0.3"\n', "set must be a table"),
    (GOOD + 'samples = "abc"\n', "samples must be an integer"),
    (GOOD.replace('name = "mlp"', 'name = ".."'), "plain folder name"),
    (GOOD.replace('name = "mlp"', 'name = "a/b"'), "plain folder name"),
    (GOOD.replace('name = "mlp"', 'name = 3'), "plain folder name"),
    (GOOD + "widths = [1]\n", "widths must be ≥ 2"),
    (GOOD + "T = -1\n", "T must be a finite number > 0"),
    (GOOD + 'T = "1"\n', "T must be a finite number > 0"),
    (GOOD + "power = 1\n", "power must be true or false"),
    (GOOD + 'backend = "gpu"\n', "backend must be one of"),
    (GOOD + "colour = 1\n", "unknown key(s) ['colour']"),
    (GOOD + "V0 = [[1.0, 2.0], [2.0, 1.0]]\n", "V0"),
    (GOOD + "m = 3\n", "m = 3 but V0 is 2×2"),
    (GOOD + 'set = { gamma = "2" }\n', "does not apply"),
    (GOOD.replace('variant = "mlp"', 'variant = "resnet"') + 'set = { gamma = "2" }\n', "gamma = 2 > 1"),
    (GOOD.replace('variant = "mlp"', 'variant = "nope"'), "variant must be one of"),
    (GOOD + "[other]\nx = 1\n", "unknown top-level key"),
    ("x = [1,\n", "malformed TOML"),
]


@pytest.mark.parametrize("text,msg", BAD)
def test_bad_files_are_refused_naming_the_field(tmp_path, text, msg):
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(CovsdeInputError) as exc:
        load_suite(str(f))
    assert msg in str(exc.value), str(exc.value)


def test_not_a_file_and_not_utf8(tmp_path, capsys):
    (tmp_path / "dir.toml").mkdir()
    bin_ = tmp_path / "bin.toml"
    bin_.write_bytes(b"\xff\xfe\x00[[entry]]")
    for spec, msg in ((tmp_path / "dir.toml", "not a file"), (bin_, "not UTF-8"), (tmp_path / "none.toml", "not found")):
        assert main(["suite", str(spec), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1


def test_entry_folders_stay_inside_out(tmp_path):
    assert entry_folder(tmp_path, "a.b_c-1") == tmp_path / "a.b_c-1"
    for name in ("..", "../x", "/etc"):
        with pytest.raises(CovsdeInputError):
            entry_folder(tmp_path, name)
