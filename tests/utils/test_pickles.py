"""isegm.utils.pickles.safe_pickle_load: what COCO+LVIS and IoU pickles hold loads, anything else is refused."""
import collections
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from isegm.utils.pickles import UnsafePickleError, safe_pickle_load

ANNOTATION = ([cv2.imencode(".png", np.eye(4, dtype=np.uint8))[1]], [(0, 1)], {"a": None, 3: {1, 2}}, np.int64(7),
              frozenset({"x"}), b"\x00\xff", bytearray(b"ab"), 1.5 + 2j, True)


def dump(path: Path, obj, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_annotation_content_loads(tmp_path, protocol):
    loaded = safe_pickle_load(dump(tmp_path / "ok.pickle", ANNOTATION, protocol))
    assert loaded[0][0].dtype == np.uint8
    np.testing.assert_array_equal(loaded[0][0], ANNOTATION[0][0])
    assert loaded[1:] == ANNOTATION[1:] and type(loaded[3]) is np.int64


@pytest.mark.parametrize("protocol", [2, 5])
def test_iou_pickle_content_loads(tmp_path, protocol):
    """What scripts/evaluate_model.py writes: a dict of names and float32 arrays, or a bare list of arrays."""
    ious = [np.linspace(0.5, 0.9, 5, dtype=np.float32), np.zeros(0, np.float32), np.array([0.7], ">f8")]
    analysis = {"dataset_name": "GrabCut", "model_name": "m", "all_ious": ious}
    for obj in (analysis, ious):
        path = dump(tmp_path / "ious.pkl", obj, protocol)
        loaded = safe_pickle_load(path, "IoU pickle")
        arrays = loaded["all_ious"] if isinstance(loaded, dict) else loaded
        reference = pickle.loads(path.read_bytes())  # protocol 2 rebuilds '>f8' as native float64, as here
        reference = reference["all_ious"] if isinstance(reference, dict) else reference
        assert len(arrays) == len(ious)
        for got, expected, plain in zip(arrays, ious, reference):
            assert got.dtype == plain.dtype
            np.testing.assert_array_equal(got, expected)
    assert safe_pickle_load(tmp_path / "ious.pkl")[0].shape == (5,)


def test_numpy_1x_module_paths(tmp_path):
    old = pickle.dumps(ANNOTATION, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in old
    (tmp_path / "old.pickle").write_bytes(old)
    loaded = safe_pickle_load(tmp_path / "old.pickle")
    assert loaded[3] == 7
    np.testing.assert_array_equal(loaded[0][0], ANNOTATION[0][0])
    # protocol 5 (_frombuffer): module names are length-prefixed and framed, so fix both lengths
    data = pickle.dumps(np.arange(3.0), protocol=5)
    old_name, new_name = b"numpy._core.numeric", b"numpy.core.numeric"
    assert data[2:3] == b"\x95" and data.count(b"\x8c" + bytes([len(old_name)]) + old_name) == 1  # one frame
    data = data.replace(b"\x8c" + bytes([len(old_name)]) + old_name, b"\x8c" + bytes([len(new_name)]) + new_name)
    frame = int.from_bytes(data[3:11], "little") + len(new_name) - len(old_name)
    (tmp_path / "old5.pickle").write_bytes(data[:3] + frame.to_bytes(8, "little") + data[11:])
    np.testing.assert_array_equal(safe_pickle_load(tmp_path / "old5.pickle"), [0.0, 1.0, 2.0])


class RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("payload, refused", [(Path("/etc/passwd"), "pathlib"), (RunsCode(), "builtins.print"),
                                              (collections.OrderedDict(a=1), "collections.OrderedDict")])
def test_refused_class_names_the_file(tmp_path, capsys, payload, refused):
    path = dump(tmp_path / "evil.pickle", {"all_ious": [payload]})
    with pytest.raises(UnsafePickleError, match=rf"masks .*evil\.pickle: refusing to unpickle {refused}"):
        safe_pickle_load(path, "masks")
    assert "this must never run" not in capsys.readouterr().out


def test_not_a_pickle_and_missing_file(tmp_path):
    (tmp_path / "garbage.pickle").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(pickle.UnpicklingError, match=r"garbage\.pickle is not a valid pickle") as info:
        safe_pickle_load(tmp_path / "garbage.pickle")
    assert not isinstance(info.value, UnsafePickleError)
    (tmp_path / "truncated.pickle").write_bytes(pickle.dumps(ANNOTATION)[:-10])
    with pytest.raises(pickle.UnpicklingError, match=r"scores .*truncated\.pickle is not a valid pickle"):
        safe_pickle_load(tmp_path / "truncated.pickle", "scores")
    with pytest.raises(FileNotFoundError, match=r"IoU pickle not found: .*nowhere\.pkl"):
        safe_pickle_load(tmp_path / "nowhere.pkl", "IoU pickle")
    (tmp_path / "folder.pkl").mkdir()
    with pytest.raises(FileNotFoundError, match=r"pickle not found: .*folder\.pkl"):
        safe_pickle_load(tmp_path / "folder.pkl")
