import copy
import pickle
import random
import struct
import zipfile

import numpy as np
import pytest
import torch

import taxdet.supertax as supertax
from taxdet.detection.engine import checkpoint


def test_atomic_save_never_leaves_a_broken_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save_atomic({"step": 1}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_atomic({"step": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load(path) == {"step": 1}          # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pt"
    checkpoint.save_atomic({"w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(checkpoint.CheckpointError, match="bad.pt: not a readable checkpoint"):
        checkpoint.load(path)


def test_checkpoint_of_another_taxonomy_is_refused_listing_the_classes(taxset):
    ckpt = {"taxonomy_hash": taxset.hash, "taxonomies": taxset.to_dict()}
    checkpoint.check_taxonomy(ckpt, taxset, "ok.pt")  # same taxonomy: accepted
    d = copy.deepcopy(taxset.to_dict())
    d["super_taxonomy"]["classes"].append({"name": "bicycle"})
    other = supertax.TaxonomySet.from_dict(d)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.check_taxonomy({"taxonomy_hash": other.hash, "taxonomies": d}, taxset, "old.pt")
    assert "old.pt" in str(err.value) and "removed ['bicycle']" in str(err.value)


def test_changed_labels_are_named_in_the_refusal(taxset):
    d = copy.deepcopy(taxset.to_dict())
    d["taxonomies"][0]["labels"][0]["maps_to"] = "pedestrian_adult"
    other = supertax.TaxonomySet.from_dict(d)
    assert checkpoint.taxonomy_differences(other, taxset) == [
        "taxonomy 'customer_a' changed its labels or weights"]


# ---------------------------------------------------------------------------------------------
# safe loading, digest, RNG state as plain data


def flip_byte(path, record: str | None = None) -> None:
    """Invert one byte in the middle of the largest stored record (a tensor's raw data) of the
    torch zip archive ``path``, or of the record whose name ends with ``record``."""
    with zipfile.ZipFile(path) as z:
        infos = [i for i in z.infolist() if record is None or i.filename.endswith(record)]
        info = max(infos, key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_checkpoint_is_plain_data_with_its_digest(tmp_path):
    path = tmp_path / "c.pt"
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "rng": checkpoint.rng_state(),
             "config": {"a": [1, 2.5, None, True, "x"]}, "step": 3}
    checkpoint.save_atomic(state, path)
    raw = torch.load(path, weights_only=True)           # anyone can read it safely
    assert raw["checkpoint_format"] == checkpoint.FORMAT
    assert raw["sha256"] == checkpoint.state_digest(state)
    loaded = checkpoint.load(path)
    assert list(loaded) == ["model", "rng", "config", "step"]   # the digest keys are removed
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["step"] == 3


def test_rng_state_restores_every_generator_bit_exactly(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.standard_normal()     # cached gaussians are state too
    checkpoint.save_atomic({"rng": checkpoint.rng_state()}, tmp_path / "r.pt")

    def draw():
        return (random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist(),
                np.random.randint(1 << 30), torch.rand(3).tolist())

    first = draw()
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "r.pt")["rng"])
    assert draw() == first


def test_a_flipped_byte_is_a_checksum_mismatch_naming_the_file(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save_atomic({"model": {"w": torch.arange(1000.0)}, "step": 1}, path)
    flip_byte(path)
    with pytest.raises(checkpoint.CheckpointError, match=f"{path}: checksum mismatch"):
        checkpoint.load(path)


def test_a_changed_value_with_a_kept_digest_is_a_checksum_mismatch(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save_atomic({"step": 1}, path)
    raw = torch.load(path, weights_only=True)
    torch.save({**raw, "step": 2}, path)
    with pytest.raises(checkpoint.CheckpointError, match="c.pt: checksum mismatch"):
        checkpoint.load(path)


def test_a_file_without_digest_loads_only_as_bare_weights(tmp_path):
    path = tmp_path / "effdet.pth"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(checkpoint.CheckpointError, match="effdet.pth: no sha256 digest"):
        checkpoint.load(path)
    assert torch.equal(checkpoint.load(path, bare=True)["w"], torch.ones(2))


@pytest.mark.parametrize("content, message", [
    ([1, 2, 3], "holds a list, not a checkpoint"),
    (torch.zeros(3), "holds a Tensor, not a checkpoint"),
])
def test_a_file_that_is_not_a_dict_is_refused(tmp_path, content, message):
    torch.save(content, tmp_path / "x.pt")
    with pytest.raises(checkpoint.CheckpointError, match=f"x.pt: {message}"):
        checkpoint.load(tmp_path / "x.pt", bare=True)


def test_missing_keys_are_named(tmp_path):
    checkpoint.save_atomic({"model": {}}, tmp_path / "m.pt")
    with pytest.raises(checkpoint.CheckpointError, match=r"m.pt: not a training checkpoint "
                       r"\(missing \['rng'\]\)"):
        checkpoint.load(tmp_path / "m.pt", required=("model", "rng"))


def test_an_old_checkpoint_with_pickled_rng_is_refused_with_the_upgrade_command(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"model": {}, "rng": {"python": random.getstate(),
                                     "numpy": np.random.get_state()}}, path)
    with pytest.raises(checkpoint.UnsafeCheckpointError) as err:
        checkpoint.load(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: refused: it holds pickled Python objects")
    assert f"tools/upgrade_checkpoint.py {path} NEW.pt --trust" in msg


def test_a_plain_pickle_is_never_parsed(tmp_path):
    path = tmp_path / "p.pt"
    path.write_bytes(pickle.dumps({"model": {}}))
    with pytest.raises(checkpoint.CheckpointError, match="p.pt: not a readable checkpoint "
                       r"\(not a zip archive"):
        checkpoint.load(path, bare=True)


def test_a_newer_format_is_refused(tmp_path):
    torch.save({"step": 1, "checkpoint_format": 99, "sha256": "0"}, tmp_path / "n.pt")
    with pytest.raises(checkpoint.CheckpointError, match="n.pt: checkpoint format 99"):
        checkpoint.load(tmp_path / "n.pt")


def test_saving_refuses_what_a_safe_load_cannot_read(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['state'\]\['best'\]: a numpy.float64"):
        checkpoint.save_atomic({"state": {"best": np.float64(0.5)}}, tmp_path / "c.pt")
    assert not list(tmp_path.iterdir())


def test_old_rng_tuples_convert_to_the_plain_form():
    random.seed(5), np.random.seed(6)
    old = {"python": random.getstate(), "numpy": np.random.get_state(),
           "torch": torch.get_rng_state()}
    new = checkpoint.plain_rng_state(old)
    expected = (random.random(), np.random.random())
    random.seed(0), np.random.seed(0)
    checkpoint.set_rng_state(new)
    assert (random.random(), np.random.random()) == expected


def test_weights_misfit_names_the_first_keys():
    model = torch.nn.Linear(2, 3)
    assert checkpoint.weights_misfit(model, model.state_dict()) == []
    misfit = checkpoint.weights_misfit(model, {"weight": torch.zeros(3, 5), "fc.x": torch.ones(1)})
    assert misfit == ["1 of 2 tensors missing, e.g. ['bias']", "1 unexpected, e.g. ['fc.x']",
                      "1 of 2 tensors of another shape, e.g. ['weight [3, 5] (model: [3, 2])']"]
    assert checkpoint.weights_misfit(model, [1]) == [
        "a list that is not a state dict (names to tensors)"]
