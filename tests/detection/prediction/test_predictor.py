"""taxdet.detection.prediction.predictor: model rebuilt from a checkpoint, EMA weights, boxes in
original pixels."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch
from effdet import DetBenchPredict

import taxdet.supertax as supertax
from taxdet.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD, PAD_FILL
from taxdet.detection.engine.checkpoint import CheckpointError, save_atomic
from taxdet.detection.engine.model_loading import ema_model_state
from taxdet.detection.model.build import ModelConfig, create_model
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.prediction.predictor import load_predictor, predict_images
from tests.factories import TINY_SIZE, make_checkpoint, make_demo
from tests.paths import DRIVING

SIZE = TINY_SIZE  # the tiny checkpoints' and demos' image size

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, taxset):
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    return path, make_checkpoint(path, taxset)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, taxset):
    return make_demo(tmp_path_factory.mktemp("demo"), taxset)


def _same_state(model: torch.nn.Module, state: dict) -> bool:
    own = model.state_dict()
    return own.keys() == state.keys() and all(torch.equal(own[k], state[k]) for k in own)


def test_ema_state_dict_keys_are_module_prefixed_and_strip_to_model_keys(ckpt):
    _, state = ckpt
    assert all(k.startswith("module.") for k in state["ema"])
    assert set(ema_model_state(state["ema"], "x")) == set(state["model"])


def test_ema_weights_are_used_by_default(ckpt, taxset):
    path, state = ckpt
    predictor, tax, cfg = load_predictor(path)
    ema = {k[len("module."):]: v for k, v in state["ema"].items()}
    assert _same_state(predictor.model, ema)
    assert not _same_state(predictor.model, state["model"])  # the noise made them differ
    assert tax.hash == taxset.hash and tax.names == taxset.names
    assert cfg.model.image_size == SIZE and not predictor.training


def test_no_ema_loads_the_raw_model_weights(ckpt):
    path, state = ckpt
    predictor, _, _ = load_predictor(path, use_ema=False)
    assert _same_state(predictor.model, state["model"])


def test_checkpoint_without_ema_falls_back_to_model_weights(ckpt, tmp_path):
    _, state = ckpt
    save_atomic({**state, "ema": None}, tmp_path / "no_ema.pt")
    predictor, _, _ = load_predictor(tmp_path / "no_ema.pt")
    assert _same_state(predictor.model, state["model"])


def test_taxonomy_hash_mismatch_is_refused_listing_the_difference(ckpt, tmp_path):
    changed = tmp_path / "driving"
    shutil.copytree(DRIVING, changed)
    yaml_c = changed / "customer_c.yaml"
    yaml_c.write_text(yaml_c.read_text().replace("maps_to: traffic_light",
                                                 "maps_to: traffic_light\n    box_weight: 3.0"))
    other = supertax.load([changed])
    with pytest.raises(CheckpointError, match="'customer_c' changed its labels or weights"):
        load_predictor(ckpt[0], taxset=other)


def test_not_a_training_checkpoint_names_missing_keys(tmp_path):
    torch.save({"model": {}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad.pt: not a training checkpoint .*'config'"):
        load_predictor(tmp_path / "bad.pt")


def _reference_input(rgb: np.ndarray) -> tuple[torch.Tensor, float]:
    """Eval preprocessing by hand (cv2 linear resize of the long side, bottom/right pad)."""
    h, w = rgb.shape[:2]
    scale = SIZE / max(h, w)
    small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
    canvas = np.empty((SIZE, SIZE, 3), np.uint8)
    canvas[:] = PAD_FILL
    canvas[:small.shape[0], :small.shape[1]] = small
    x = (torch.from_numpy(canvas).permute(2, 0, 1).float() / 255
         - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return x[None], scale


def test_predictions_are_in_original_pixels_like_effdet_predict_bench(ckpt, taxset, demo, tmp_path):
    """A 200x150 image (scale 128/200 = 0.64, input 128x96 + padding) predicted through
    predict_images equals effdet's own DetBenchPredict given img_scale 1/0.64 and
    img_size (200, 150)."""
    rgb = cv2.cvtColor(cv2.imread(str(demo / "test/images/000001.png")), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (200, 150), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "wide.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    gt = {"images": [{"id": 7, "file_name": "wide.png", "width": 200, "height": 150}],
          "annotations": [], "categories": []}
    predictor, _, _ = load_predictor(ckpt[0], hierarchy_decoding=False)  # effdet has none
    ours = predict_images(predictor, gt, tmp_path, taxset=taxset, image_size=SIZE, progress=False)

    x, scale = _reference_input(rgb)
    assert scale == 0.64
    bench = DetBenchPredict(predictor.model).eval()
    with torch.no_grad():
        ref = bench(x, {"img_scale": torch.tensor([1 / scale]),
                        "img_size": torch.tensor([[200.0, 150.0]])})[0]
    ref = ref[ref[:, 4] > predictor.score_threshold]
    assert len(ours) == len(ref) > 0
    assert {r["image_id"] for r in ours} == {7}
    # effdet keeps degenerate boxes (under 1 px after clipping); ours drops them before NMS
    # and fills the 100 with the next valid ones: each of effdet's valid ones is among ours
    # (near-tied scores of this untrained model may come in another order)
    drawable = torch.isfinite(ref[:, :4]).all(1) & (ref[:, 2:4] - ref[:, :2] >= 1).all(1)
    ref = ref[drawable]
    got = np.array([[*r["bbox"], r["score"], r["category_id"]] for r in ours])
    ref_xywh = torch.cat([ref[:, :2], ref[:, 2:4] - ref[:, :2], ref[:, 4:]], dim=1).numpy()
    # effdet's class + 1 = column + 1: boxes and classes must agree
    diff = np.abs(got[None, :, [0, 1, 2, 3, 5]] - ref_xywh[:, None, [0, 1, 2, 3, 5]]).max(-1)
    match = diff.argmin(1)
    assert (diff.min(1) <= 0.021).all()                              # rounded out, 0.01 px
    np.testing.assert_allclose(got[match, 4], ref_xywh[:, 4], atol=1e-5)
    assert got[:, 0].min() >= 0 and (got[:, 0] + got[:, 2]).max() <= 200.01
    assert (got[:, 1] + got[:, 3]).max() <= 150.01                  # clipped to the original h


def test_predict_images_resolves_files_next_to_the_ground_truth_file(ckpt, taxset, demo, tmp_path):
    gt = json.loads((demo / "test/annotations.json").read_text())
    for img in gt["images"]:
        img["file_name"] = f"images/{img['file_name']}"
    (demo / "test/relative.json").write_text(json.dumps(gt))
    predictor, _, _ = load_predictor(ckpt[0])
    results = predict_images(predictor, demo / "test/relative.json", taxset=taxset, image_size=SIZE,
                             batch_size=3, progress=False)
    assert {r["image_id"] for r in results} == {1, 2, 3, 4}
    assert {r["category_id"] for r in results} <= set(range(1, taxset.num_classes + 1))


def test_missing_image_files_are_listed_in_one_error(ckpt, taxset, demo):
    gt = json.loads((demo / "test/annotations.json").read_text())
    gt["images"][1]["file_name"] = "gone.png"
    gt["images"][3]["file_name"] = "/nowhere/also_gone.png"
    del gt["images"][2]["file_name"]
    predictor, _, _ = load_predictor(ckpt[0])
    with pytest.raises(FileNotFoundError) as err:
        predict_images(predictor, gt, demo / "test/images", taxset=taxset, image_size=SIZE,
                       progress=False)
    msg = str(err.value)
    assert "3 of 4 image files not found" in msg
    assert f"image id 2: {demo / 'test/images/gone.png'}" in msg
    assert "image id 3: no file_name" in msg and "image id 4: /nowhere/also_gone.png" in msg


def test_recorded_size_differing_from_the_file_is_an_error_naming_the_image(ckpt, taxset, demo):
    gt = json.loads((demo / "test/annotations.json").read_text())
    gt["images"][0]["width"] = 300
    predictor, _, _ = load_predictor(ckpt[0])
    with pytest.raises(ValueError, match=r"image id 1 .*decoded size 128x128 != recorded 300x128"):
        predict_images(predictor, gt, demo / "test/images", taxset=taxset, image_size=SIZE,
                       progress=False)


def test_per_taxonomy_heads_checkpoint_rebuilds_with_the_taxonomy_masks(taxset, tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(model=ModelConfig("efficientdet_d0", image_size=SIZE, heads="per-taxonomy"))
    model = create_model(cfg.model, taxset.num_classes, head_masks=np.asarray(taxset.masks))
    save_atomic({"model": model.state_dict(), "ema": None, "config": cfg.to_dict(),
                 "taxonomies": taxset.to_dict(), "taxonomy_hash": taxset.hash}, tmp_path / "h.pt")
    predictor, _, _ = load_predictor(tmp_path / "h.pt")
    assert _same_state(predictor.model, model.state_dict())
    dets = predictor(torch.zeros(1, 3, SIZE, SIZE), torch.ones(1), torch.tensor([[SIZE, SIZE]]))
    assert len(dets) == 1
