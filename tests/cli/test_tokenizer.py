"""`unicl tokenizer train`: files in, a loadable tokenizer.json out."""

from unicl.cli.main import main
from unicl.models import Tokenizer


def test_train_writes_a_tokenizer_that_models_can_load(tmp_path, capsys):
    captions = tmp_path / "captions.txt"
    captions.write_text(
        "".join(
            f"a photo of a {colour} {garment} on the {place}.\n"
            for colour in ("red", "grey", "black", "yellow", "purple")
            for garment in ("coat", "pullover", "trouser", "sneaker", "handbag")
            for place in ("chair", "floor", "street", "mountain", "window")
        )
    )
    names = tmp_path / "classes.txt"
    names.write_text("coat\npullover\nankle boot\n")
    out = tmp_path / "tok"
    assert (
        main(
            [
                "tokenizer",
                "train",
                str(captions),
                str(names),
                "--vocab-size",
                "300",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "tokenizer.json (300 tokens)" in capsys.readouterr().out
    tokenizer = Tokenizer.from_file(out, context_length=16)
    assert tokenizer.vocab_size == 300
    assert tokenizer.decode(tokenizer(["ankle boot"])[0].tolist()) == " ankle boot"


def test_missing_input_files_are_reported_in_one_line(tmp_path, capsys):
    code = main(["tokenizer", "train", str(tmp_path / "none.txt"), "--out", str(tmp_path)])
    assert code == 2
    assert "none.txt is not a file" in capsys.readouterr().err
