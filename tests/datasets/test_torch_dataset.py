"""DetectionDataset + collate: contract-2 batches, normalisation, scale, workers, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import DataLoader

import taxdet.supertax as supertax
from taxdet.core.targets import PADDING
from taxdet.datasets.sample import Sample
from taxdet.datasets.torch_dataset import DetectionDataset, collate, load_image
from taxdet.datasets.transforms import AugmentConfig, eval_transform, train_transform
from tests.paths import DRIVING

TAXSET = supertax.load([DRIVING])


def write_image(path: Path, h: int, w: int, seed: int) -> None:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)) \
        .save(path)


def sample(tmp_path: Path, image_id: int, taxonomy: str, boxes, classes, h=100, w=200,
           ignore=None) -> Sample:
    path = tmp_path / f"{image_id}.png"
    write_image(path, h, w, image_id)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    ignore = np.asarray(ignore if ignore is not None else np.zeros((0, 4)), np.float32)
    return Sample(image_id=image_id, file=str(path), width=w, height=h, taxonomy=taxonomy,
                  label_mask=TAXSET.label_mask(taxonomy).copy(), boxes=boxes,
                  classes=np.asarray(classes, np.int64),
                  box_weights=np.full(len(boxes), 2.0, np.float32), ignore=ignore.reshape(-1, 4))


@pytest.fixture
def three(tmp_path) -> list[Sample]:
    return [sample(tmp_path, 11, "customer_b", [[10, 10, 50, 40], [100, 20, 180, 90]], [1, 4],
                   ignore=[[0, 0, 30, 30]]),
            sample(tmp_path, 12, "customer_a", [], [], h=120, w=80),
            sample(tmp_path, 13, "customer_c", [[5, 5, 60, 60], [70, 10, 90, 50],
                                                [120, 30, 190, 95]], [3, 6, 3])]


def test_collate_builds_the_contract_batch(three):
    ds = DetectionDataset(three, TAXSET, eval_transform(AugmentConfig(image_size=128)), 128)
    batch = collate([ds[i] for i in range(3)])
    expect = {"image": ((3, 3, 128, 128), torch.float32), "boxes": ((3, 3, 4), torch.float32),
              "classes": ((3, 3), torch.int64), "box_weights": ((3, 3), torch.float32),
              "ignore": ((3, 1, 4), torch.float32), "label_mask": ((3, 7), torch.bool),
              "image_id": ((3,), torch.int64), "taxonomy": ((3,), torch.int64),
              "scale": ((3,), torch.float32), "orig_size": ((3, 2), torch.int64),
              "dropped_boxes": ((3,), torch.int64)}
    assert {k: (tuple(v.shape), v.dtype) for k, v in batch.items()} == expect
    # G = 3 (the third image), R = 1 (the first); padding rows: PADDING class, weight 0, zeros
    assert batch["classes"].tolist() == [[1, 4, PADDING], [PADDING] * 3, [3, 6, 3]]
    assert batch["box_weights"].tolist() == [[2, 2, 0], [0, 0, 0], [2, 2, 2]]
    assert (batch["boxes"][0, 2] == 0).all() and (batch["ignore"][1:] == 0).all()
    assert batch["image_id"].tolist() == [11, 12, 13]
    assert batch["taxonomy"].tolist() == [TAXSET.index[t] for t in
                                          ("customer_b", "customer_a", "customer_c")]
    assert torch.equal(batch["label_mask"], torch.from_numpy(
        TAXSET.masks[[TAXSET.index["customer_b"], TAXSET.index["customer_a"],
                      TAXSET.index["customer_c"]]]))
    assert batch["orig_size"].tolist() == [[100, 200], [120, 80], [100, 200]]
    # scale = 128 / long side: 128 / 200 = 0.64, 128 / 120 = 1.0667
    assert batch["scale"].tolist() == pytest.approx([0.64, 128 / 120, 0.64])


def test_eval_boxes_map_back_to_original_pixels_with_scale(three):
    ds = DetectionDataset(three, TAXSET, eval_transform(AugmentConfig(image_size=128)))
    batch = collate([ds[0], ds[2]])
    back = batch["boxes"] / batch["scale"].view(-1, 1, 1)
    np.testing.assert_allclose(back[0, :2].numpy(), three[0].boxes, atol=1e-3)
    np.testing.assert_allclose(back[1].numpy(), three[2].boxes, atol=1e-3)
    np.testing.assert_allclose(batch["ignore"][0, 0].numpy() / 0.64, three[0].ignore[0],
                               atol=1e-3)


def test_image_is_imagenet_normalised_like_torchvision(three):
    ds = DetectionDataset(three, TAXSET, eval_transform(AugmentConfig(image_size=128)))
    item = ds[0]
    ours = collate([item])["image"][0]
    reference = TF.normalize(item["image"].float() / 255, [0.485, 0.456, 0.406],
                             [0.229, 0.224, 0.225])
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    # the pixels themselves are the file's, resized: top-left 64 rows hold the image
    original = load_image(three[0].file)
    assert abs(float(item["image"][:, :64].float().mean()) - original.mean()) < 2.0


def test_target_fn_keys_are_stacked_by_collate(three):
    def count_boxes(item: dict) -> dict:
        return {"num_boxes": torch.tensor(len(item["boxes"]))}
    ds = DetectionDataset(three, TAXSET, eval_transform(AugmentConfig(image_size=64)),
                          target_fn=count_boxes)
    batch = collate([ds[i] for i in range(3)])
    assert batch["num_boxes"].tolist() == [2, 0, 3]


def test_collate_rejects_an_extra_key_that_is_not_a_tensor(three):
    ds = DetectionDataset(three, TAXSET, eval_transform(AugmentConfig(image_size=64)),
                          target_fn=lambda item: {"note": "text"})
    with pytest.raises(TypeError, match="item key 'note' is not a tensor"):
        collate([ds[0], ds[1]])


def test_workers_augment_differently_and_reproducibly(three):
    ds = DetectionDataset([three[0]] * 8, TAXSET,
                          train_transform(AugmentConfig(image_size=64), seed=0))

    def images() -> torch.Tensor:
        torch.manual_seed(123)
        loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate)
        return torch.cat([b["image"] for b in loader])

    first, again = images(), images()
    torch.testing.assert_close(first, again)          # same torch seed -> same augmentations
    # batches 0 and 1 come from workers 0 and 1: unseeded forks would repeat each other
    assert not torch.equal(first[0:2], first[2:4])


def test_decoded_size_mismatch_names_the_image(three):
    three[0].width = 201
    ds = DetectionDataset(three, TAXSET, eval_transform(AugmentConfig(image_size=64)))
    with pytest.raises(ValueError, match=r"image id 11 \(.*11.png\): decoded size 200x100 != "
                                         r"recorded 201x100"):
        ds[0]


def test_missing_file_names_the_image(three, tmp_path):
    Path(three[1].file).unlink()
    ds = DetectionDataset(three, TAXSET, eval_transform(AugmentConfig(image_size=64)))
    with pytest.raises(OSError, match=r"image id 12: cannot read image file .*12.png"):
        ds[1]


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    img = Image.fromarray(np.zeros((40, 60, 3), np.uint8))   # stored 60 wide, 40 high
    exif = img.getexif()
    exif[0x0112] = 6                                          # "rotate 90 CW to display"
    img.save(path, exif=exif)
    assert load_image(str(path)).shape == (60, 40, 3)


def test_image_size_must_match_the_transform(three):
    with pytest.raises(ValueError, match="image_size 256 != transform's 128"):
        DetectionDataset(three, TAXSET, eval_transform(AugmentConfig(image_size=128)), 256)


def test_unknown_taxonomy_names_the_image(three):
    three[2].taxonomy = "customer_z"
    ds = DetectionDataset(three, TAXSET, eval_transform(AugmentConfig(image_size=64)))
    with pytest.raises(KeyError, match="image id 13 .*taxonomy 'customer_z' is not in"):
        ds[2]
