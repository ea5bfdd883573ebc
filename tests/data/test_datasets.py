"""Evaluation datasets: on-disk layouts, sample order, mask decoding and error messages (tiny files in tmp_path)."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from PIL import Image

from isegm.data.base import ISDataset
from isegm.data.datasets import (
    BerkeleyDataset,
    COCOMValDataset,
    DavisDataset,
    GrabCutDataset,
    PascalVocDataset,
    SBDEvaluationDataset,
)
from isegm.data.image_io import read_image_rgb, read_mask
from isegm.data.sample import DSample
from isegm.inference.utils import DATASETS, get_dataset
from isegm.utils.errors import InputError

H, W = 6, 8
BGR_PIXEL = (10, 20, 30)  # written as B, G, R; must come back as R, G, B = 30, 20, 10


def write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array), path
    return path


def bgr_image(seed: int = 0) -> np.ndarray:
    image = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    image[0, 0] = BGR_PIXEL
    return image


def assert_rgb_of(image: np.ndarray, bgr: np.ndarray) -> None:
    assert image.dtype == np.uint8 and image.shape == (H, W, 3)
    np.testing.assert_array_equal(image, bgr[:, :, ::-1])
    assert tuple(image[0, 0]) == BGR_PIXEL[::-1]


# --------------------------------------------------------------------------------------------------
# GrabCut / Berkeley

def grabcut_mask() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[1:3, 1:4] = 255  # object
    mask[3, :] = 128  # ignore band
    mask[4, 0] = 1  # raw 1 also counts as object (original behaviour)
    mask[4, 1] = 50  # other values below 128 are background
    mask[5, 0] = 129  # > 128 -> object
    return mask


def expected_grabcut_gt(mask: np.ndarray) -> np.ndarray:
    gt = np.zeros((H, W), np.int32)
    gt[(mask > 128) | (mask == 1)] = 1
    gt[mask == 128] = -1
    return gt


def make_grabcut(root: Path, images: str = "data_GT", masks: str = "boundary_GT") -> dict:
    # Images with mixed extensions; 'c.1.png' is matched to mask stem 'c' (text up to the first dot).
    written = {}
    for i, (image_name, mask_name) in enumerate([("b.png", "b.png"), ("a.bmp", "a.bmp"), ("c.1.png", "c.bmp")]):
        image = bgr_image(i)
        write(root / images / image_name, image)
        write(root / masks / mask_name, np.repeat(grabcut_mask()[:, :, None], 3, axis=2))
        written[image_name] = image
    write(root / masks / "unused.png", np.zeros((H, W), np.uint8))
    return written


@pytest.mark.parametrize("cls, images, masks, name", [
    (GrabCutDataset, "data_GT", "boundary_GT", "GrabCut"),
    (BerkeleyDataset, "images", "masks", "Berkeley"),
])
def test_grabcut_layout(tmp_path, cls, images, masks, name):
    written = make_grabcut(tmp_path, images, masks)
    dataset = cls(tmp_path)
    assert dataset.name == name
    assert len(dataset) == 3
    assert dataset.dataset_samples == ["a.bmp", "b.png", "c.1.png"]
    for index, image_name in enumerate(dataset.dataset_samples):
        sample = dataset.get_sample(index)
        assert isinstance(sample, DSample) and sample.sample_id == index and sample.init_mask is None
        assert_rgb_of(sample.image, written[image_name])
        assert sample.gt_mask.dtype == np.int32
        np.testing.assert_array_equal(sample.gt_mask, expected_grabcut_gt(grabcut_mask()))


def test_grabcut_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"GrabCut dataset: root folder not found: .*nowhere"):
        GrabCutDataset(tmp_path / "nowhere")
    (tmp_path / "data_GT").mkdir()
    with pytest.raises(FileNotFoundError, match=r"GrabCut dataset: masks folder not found: .*boundary_GT"):
        GrabCutDataset(tmp_path)
    (tmp_path / "boundary_GT").mkdir()
    with pytest.raises(ValueError, match=r"GrabCut dataset: no samples found in .*data_GT"):
        GrabCutDataset(tmp_path)
    write(tmp_path / "data_GT" / "x.png", bgr_image())
    write(tmp_path / "boundary_GT" / "y.png", grabcut_mask())
    with pytest.raises(FileNotFoundError, match=r"no mask for image .*data_GT/x\.png: expected .*boundary_GT/x\.<ext>"):
        GrabCutDataset(tmp_path)


def test_berkeley_missing_images_folder(tmp_path):
    (tmp_path / "masks").mkdir()
    with pytest.raises(FileNotFoundError, match=r"Berkeley dataset: images folder not found: .*images"):
        BerkeleyDataset(tmp_path)


def test_size_mismatch_is_reported(tmp_path):
    write(tmp_path / "data_GT" / "x.png", bgr_image())
    write(tmp_path / "boundary_GT" / "x.png", np.zeros((H + 1, W), np.uint8))
    with pytest.raises(ValueError, match=r"x\.png is 8x6 but its mask .*x\.png is 8x7"):
        GrabCutDataset(tmp_path).get_sample(0)


# --------------------------------------------------------------------------------------------------
# DAVIS

def test_davis_layout(tmp_path):
    for i, name in enumerate(["f2", "f1"]):
        write(tmp_path / "img" / f"{name}.png", bgr_image(i))
        mask = np.zeros((H, W, 3), np.uint8)
        mask[1:3, 2:5] = 255
        mask[5, 7] = (0, 0, 3)  # any non-zero channel is object (anti-aliased edge)
        write(tmp_path / "gt" / f"{name}.png", mask)
    dataset = DavisDataset(tmp_path)
    assert dataset.name == "DAVIS"
    assert dataset.dataset_samples == ["f1.png", "f2.png"]
    sample = dataset.get_sample(1)
    assert_rgb_of(sample.image, bgr_image(0))
    expected = np.zeros((H, W), np.int32)
    expected[1:3, 2:5] = 1
    expected[5, 7] = 1
    np.testing.assert_array_equal(sample.gt_mask, expected)


def test_davis_jpeg_images(tmp_path):
    write(tmp_path / "img" / "00000.jpg", bgr_image())
    write(tmp_path / "gt" / "00000.png", np.zeros((H, W), np.uint8))
    sample = DavisDataset(tmp_path).get_sample(0)
    assert sample.image.shape == (H, W, 3) and sample.image.dtype == np.uint8
    assert sample.gt_mask.sum() == 0


# --------------------------------------------------------------------------------------------------
# SBD

def write_sbd_mat(path: Path, segmentation: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    gtinst = {"Segmentation": segmentation, "Boundaries": np.zeros((1, 1), object),
              "Categories": np.array([[15]], np.uint8)}
    scipy.io.savemat(str(path), {"GTinst": gtinst})


def make_sbd(root: Path) -> dict:
    segs = {}
    for i, (name, ids) in enumerate([("2008_000002", (3, 1)), ("2008_000001", (2,))]):
        seg = np.zeros((H, W), np.uint8)
        for k, inst in enumerate(ids):
            seg[k * 2:k * 2 + 2, 1:5] = inst
        write_sbd_mat(root / "inst" / f"{name}.mat", seg)
        write(root / "img" / f"{name}.jpg", bgr_image(i))
        segs[name] = seg
    (root / "val.txt").write_text("2008_000002\n2008_000001\n")
    (root / "train.txt").write_text("2008_000001\n")
    return segs


def test_sbd_mat_layout(tmp_path):
    seg = np.arange(H * W, dtype=np.uint8).reshape(H, W) % 4
    write_sbd_mat(tmp_path / "x.mat", seg)
    np.testing.assert_array_equal(scipy.io.loadmat(str(tmp_path / "x.mat"))["GTinst"][0][0][0], seg)


def test_sbd_layout(tmp_path):
    segs = make_sbd(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    dataset = SBDEvaluationDataset(tmp_path)
    # val.txt order, then instance ids ascending
    assert dataset.dataset_samples == [("2008_000002", 1), ("2008_000002", 3), ("2008_000001", 2)]
    assert len(dataset) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no cache written into the dataset folder
    for index, (name, inst) in enumerate(dataset.dataset_samples):
        sample = dataset.get_sample(index)
        assert sample.image.shape == (H, W, 3) and sample.sample_id == index
        np.testing.assert_array_equal(sample.gt_mask, (segs[name] == inst).astype(np.int32))
    train = SBDEvaluationDataset(tmp_path, split="train")
    assert train.dataset_samples == [("2008_000001", 2)]


def test_sbd_errors(tmp_path):
    (tmp_path / "img").mkdir()
    with pytest.raises(FileNotFoundError, match=r"instances folder not found: .*inst"):
        SBDEvaluationDataset(tmp_path)
    (tmp_path / "inst").mkdir()
    with pytest.raises(FileNotFoundError, match=r"split list not found: .*val\.txt"):
        SBDEvaluationDataset(tmp_path)
    (tmp_path / "val.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"no samples found in .*val\.txt"):
        SBDEvaluationDataset(tmp_path)
    (tmp_path / "val.txt").write_text("missing_id\n")
    with pytest.raises(FileNotFoundError, match=r"no instance file .*missing_id\.mat for image 'missing_id'"):
        SBDEvaluationDataset(tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        SBDEvaluationDataset(tmp_path, split="test")


def test_sbd_missing_image(tmp_path):
    make_sbd(tmp_path)
    (tmp_path / "img" / "2008_000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image of '2008_000001' .*not found: .*2008_000001\.jpg"):
        SBDEvaluationDataset(tmp_path)


# --------------------------------------------------------------------------------------------------
# PASCAL VOC

def voc_palette() -> np.ndarray:
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        c, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[index] = (r, g, b)
    return palette


def write_voc_png(path: Path, indices: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from PIL import Image
    except ImportError:  # the BGR colour image that cv2 decodes from the palette file
        write(path, voc_palette()[indices][:, :, ::-1])
        return
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(voc_palette().flatten().tolist())
    image.save(path)


def test_voc_palette_gray_levels(tmp_path):
    indices = np.array([[0, 1, 2, 3, 4, 16, 255, 0]], np.uint8)
    write_voc_png(tmp_path / "p.png", indices)
    gray = cv2.cvtColor(read_mask(tmp_path / "p.png"), cv2.COLOR_BGR2GRAY)
    assert gray[0].tolist() == [0, 38, 75, 113, 15, 38, 220, 0]


def test_pascalvoc_layout(tmp_path):
    indices = np.zeros((H, W), np.uint8)
    indices[0, :4] = 1
    indices[1, :4] = 2
    indices[2, :4] = 3
    indices[3, :4] = 4
    indices[4, :4] = 16  # same gray level (38) as instance 1: merged with it
    indices[:, 7] = 255  # void
    write_voc_png(tmp_path / "SegmentationObject" / "2007_000032.png", indices)
    write(tmp_path / "JPEGImages" / "2007_000032.jpg", bgr_image())
    only_void = np.full((H, W), 255, np.uint8)
    write_voc_png(tmp_path / "SegmentationObject" / "2007_000033.png", only_void)  # contributes no sample
    write(tmp_path / "JPEGImages" / "2007_000033.jpg", bgr_image())
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n2007_000032\n")

    dataset = PascalVocDataset(tmp_path, split="val")
    # sorted by gray level (instance 4 = 15 first), not by palette index
    assert dataset.dataset_samples == [("2007_000032", 15), ("2007_000032", 38), ("2007_000032", 75),
                                       ("2007_000032", 113)]
    expected_rows = {15: [3], 38: [0, 4], 75: [1], 113: [2]}
    for index, (_, gray) in enumerate(dataset.dataset_samples):
        gt = dataset.get_sample(index).gt_mask
        expected = np.zeros((H, W), np.int32)
        for row in expected_rows[gray]:
            expected[row, :4] = 1
        expected[:, 7] = -1  # void -> ignore
        np.testing.assert_array_equal(gt, expected)


def test_pascalvoc_errors(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationObject").mkdir()
    with pytest.raises(FileNotFoundError, match=r"Pascal dataset: split list not found: .*Segmentation/val\.txt"):
        PascalVocDataset(tmp_path)
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000001\n")
    with pytest.raises(FileNotFoundError, match=r"no instance mask .*2007_000001\.png for image '2007_000001'"):
        PascalVocDataset(tmp_path)


# --------------------------------------------------------------------------------------------------
# COCO MVal

def test_coco_mval_layout(tmp_path):
    for i, name in enumerate(["b", "a"]):
        write(tmp_path / "img" / f"{name}.jpg", bgr_image(i))
        mask = np.zeros((H, W, 3), np.uint8)
        mask[1:3, 1:3] = (200, 0, 0)  # channel 0 > 128 -> object
        mask[4, 4] = (100, 255, 255)  # channel 0 <= 128 -> background
        mask[5, 5] = (128, 0, 0)
        write(tmp_path / "gt" / f"{name}.png", mask)
    (tmp_path / "img" / "notes.txt").write_text("not an image")
    dataset = COCOMValDataset(tmp_path)
    assert dataset.dataset_samples == ["a.jpg", "b.jpg"]
    expected = np.zeros((H, W), np.int32)
    expected[1:3, 1:3] = 1
    for index in range(2):
        sample = dataset.get_sample(index)
        assert sample.image.shape == (H, W, 3)
        np.testing.assert_array_equal(sample.gt_mask, expected)


def test_coco_mval_errors(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    with pytest.raises(ValueError, match=r"COCOMVal dataset: no samples found in .*img"):
        COCOMValDataset(tmp_path)
    write(tmp_path / "img" / "a.jpg", bgr_image())
    with pytest.raises(FileNotFoundError, match=r"no mask for image .*img/a\.jpg: expected .*gt/a\.png"):
        COCOMValDataset(tmp_path)


# --------------------------------------------------------------------------------------------------
# get_dataset

def test_get_dataset(tmp_path):
    make_grabcut(tmp_path / "GrabCut")
    make_sbd(tmp_path / "SBD")
    cfg = {"GRABCUT_PATH": str(tmp_path / "GrabCut"), "SBD_PATH": str(tmp_path / "SBD")}
    assert isinstance(get_dataset("GrabCut", cfg), GrabCutDataset)
    assert len(get_dataset("SBD", cfg)) == 3
    sbd_train = get_dataset("SBD_Train", cfg)
    assert sbd_train.dataset_split == "train" and len(sbd_train) == 1
    try:
        from easydict import EasyDict
    except ImportError:
        return
    assert len(get_dataset("GrabCut", EasyDict(cfg))) == 3


def test_get_dataset_errors():
    assert set(DATASETS) >= {"GrabCut", "Berkeley", "DAVIS", "SBD", "SBD_Train", "PascalVOC", "COCO_MVal"}
    with pytest.raises(ValueError, match=r"unknown dataset 'Nope'; known datasets: GrabCut, Berkeley"):
        get_dataset("Nope", {})
    with pytest.raises(KeyError, match=r"DAVIS_PATH .*config\.yml"):
        get_dataset("DAVIS", {"GRABCUT_PATH": "x"})


# --------------------------------------------------------------------------------------------------
# image reading

def test_read_image_variants(tmp_path):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (H, W), dtype=np.uint8)
    bgra = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    gray16 = rng.integers(0, 65536, (H, W), dtype=np.uint16)
    bgr16 = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16)
    cases = {
        "gray.png": (gray, np.repeat(gray[:, :, None], 3, axis=2)),
        "rgba.png": (bgra, bgra[:, :, 2::-1]),
        "gray16.png": (gray16, np.repeat((gray16 >> 8).astype(np.uint8)[:, :, None], 3, axis=2)),
        "bgr16.png": (bgr16, (bgr16 >> 8).astype(np.uint8)[:, :, ::-1]),
    }
    for name, (data, expected) in cases.items():
        path = write(tmp_path / name, data)
        image = read_image_rgb(path)
        assert image.shape == (H, W, 3) and image.dtype == np.uint8, name
        np.testing.assert_array_equal(image, expected, err_msg=name)
        # identical to the original's cvtColor(cv2.imread(path), BGR2RGB)
        np.testing.assert_array_equal(image, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), err_msg=name)


def test_read_image_gray_jpeg_matches_opencv_default(tmp_path):
    path = write(tmp_path / "gray.jpg", np.random.default_rng(2).integers(0, 256, (H, W), dtype=np.uint8))
    np.testing.assert_array_equal(read_image_rgb(path), cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


def test_read_image_applies_exif_orientation_like_opencv_default(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    image = Image.fromarray(bgr_image()[:, :, ::-1])
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert read_image_rgb(tmp_path / "rot.jpg").shape == cv2.imread(str(tmp_path / "rot.jpg")).shape == (W, H, 3)


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image file not found: .*missing\.png"):
        read_image_rgb(tmp_path / "missing.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"image file .*broken\.jpg is not an image OpenCV can decode"):
        read_image_rgb(tmp_path / "broken.jpg")
    with pytest.raises(FileNotFoundError, match=r"mask file not found: .*missing\.png"):
        read_mask(tmp_path / "missing.png")


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_image_is_an_error(tmp_path, ext):
    """OpenCV decodes half a JPEG and only prints libjpeg's warning: the warning is an error here."""
    image = (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / f"full{ext}"), image)
    blob = (tmp_path / f"full{ext}").read_bytes()
    (tmp_path / f"half{ext}").write_bytes(blob[: len(blob) // 2])
    assert read_image_rgb(tmp_path / f"full{ext}").shape == (120, 160, 3)
    with pytest.raises(InputError, match=rf"image file .*half\{ext} (is truncated or corrupt|is not an image)"):
        read_image_rgb(tmp_path / f"half{ext}")
    with pytest.raises(InputError, match=rf"mask file .*half\{ext}"):
        read_mask(tmp_path / f"half{ext}")
    assert read_image_rgb(tmp_path / f"full{ext}").shape == (120, 160, 3)   # stderr is given back


def test_masks_are_read_by_value(tmp_path):
    labels = np.zeros((20, 30), np.uint16)
    labels[5:10, 5:10] = 1
    cv2.imwrite(str(tmp_path / "m16.png"), labels)
    mask = read_mask(tmp_path / "m16.png")
    assert mask.dtype == np.uint8 and mask.shape == (20, 30, 3)
    assert np.array_equal(mask[:, :, 0], labels.astype(np.uint8))    # the original's 8-bit read gives all zeros
    labels[0, 0] = 300
    cv2.imwrite(str(tmp_path / "wide.png"), labels)
    with pytest.raises(InputError, match=r"wide\.png is 16-bit with values up to 300"):
        read_mask(tmp_path / "wide.png")
    # 8-bit gray, colour and palette masks read exactly as cv2.imread(path) (the original)
    gray = np.zeros((20, 30), np.uint8)
    gray[3:7] = 255
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    colour = np.zeros((20, 30, 3), np.uint8)
    colour[2:5] = (10, 200, 30)
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    palette = Image.fromarray(np.repeat(np.arange(30, dtype=np.uint8)[None] % 4, 20, axis=0), mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (768 - 12))
    palette.save(tmp_path / "palette.png")
    for name in ("gray.png", "colour.png", "palette.png"):
        assert np.array_equal(read_mask(tmp_path / name), cv2.imread(str(tmp_path / name))), name


# --------------------------------------------------------------------------------------------------
# DSample / ISDataset

def test_dsample_and_base():
    encoded = np.array([[0, 1, 2], [220, 1, 0]], np.int32)
    sample = DSample(np.zeros((2, 3, 3), np.uint8), encoded, objects_ids=[1], ignore_ids=[220], sample_id=7)
    np.testing.assert_array_equal(sample.gt_mask, [[0, 1, 0], [-1, 1, 0]])
    assert len(sample) == 1 and sample.objects_ids == [0] and sample.sample_id == 7
    two = DSample(np.zeros((2, 3, 3), np.uint8), encoded, objects_ids=[1, 2])
    np.testing.assert_array_equal(two.get_object_mask(1), [[0, 0, 1], [0, 0, 0]])
    with pytest.raises(ValueError, match="exactly one object"):
        _ = two.gt_mask
    with pytest.raises(TypeError):
        ISDataset()  # abstract: subclasses implement get_sample
