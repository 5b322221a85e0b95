"""A run's split.json: reading it, and finding its sides' images in a ground truth."""

import json

import pytest

from taxdet.detection.evaluation import EvalInputError
from taxdet.detection.evaluation.run_split import match_split, read_split


def entry(i, digest="", source_file=None, source_id=None):
    return {"id": i, "file_name": f"{i}.png", "content_hash": digest, "source_file": source_file,
            "source_image_id": source_id}


def write_split(folder, train, val, **kw):
    data = {"format": 1, "val_fraction": 0.5, "salt": "s", "by": "content", "train": train,
            "val": val, **kw}
    (folder / "split.json").write_text(json.dumps(data))
    return folder


def images(*specs):
    """COCO image records from (id, content hash) pairs."""
    return [{"id": i, "width": 10, "height": 10, "content_hash": h} for i, h in specs]


def test_read_split_from_the_run_folder_or_the_file(tmp_path):
    write_split(tmp_path, [entry(1, "a")], [entry(2, "b", "x.json", 7)])
    for where in (tmp_path, tmp_path / "split.json"):
        split = read_split(where)
        assert [e.id for e in split.side("all")] == [1, 2]
        assert (split.val[0].source_file, split.val[0].source_image_id) == ("x.json", 7)


@pytest.mark.parametrize("change, message", [
    ({"format": 2}, r"not a split file of format 1 \(got format 2\)"),
    ({"val": {}}, "'val' must be a list of images"),
    ({"val": [entry("7")]}, r"val\[0\]: id must be an integer, got '7'"),
    ({"train": [entry(1), {"id": 2, "file_name": "2.png"}]},
     r"train\[1\]: content_hash must be a string, got None"),
    ({"val_fraction": "half"}, "val_fraction must be a number"),
])
def test_bad_split_file_names_the_file_and_entry(tmp_path, change, message):
    data = {"train": [entry(1)], "val": [entry(2)], **change}
    write_split(tmp_path, **data)
    with pytest.raises(EvalInputError, match=f"split.json: {message}"):
        read_split(tmp_path)


def test_missing_split_file_is_an_input_error(tmp_path):
    with pytest.raises(EvalInputError, match="split file not found"):
        read_split(tmp_path)


def test_images_are_matched_by_content_hash_when_both_have_hashes(tmp_path):
    # the ground truth was merged again: ids moved, contents did not
    split = read_split(write_split(tmp_path, [entry(1, "a")], [entry(2, "b"), entry(3, "c")]))
    gt = images((10, "c"), (11, "a"), (12, "b"))
    match = match_split(gt, None, split, "val")
    assert (match.image_ids, match.matched_by) == ([10, 12], "content_hash")
    assert (match.wanted, match.missing) == (2, [])


def test_missing_images_are_counted_and_named(tmp_path):
    split = read_split(write_split(tmp_path, [], [entry(2, "b"), entry(3, "gone")]))
    match = match_split(images((1, "b")), None, split, "val")
    assert match.image_ids == [1] and [e.id for e in match.missing] == [3]
    assert match.describe("val", "split.json", "gt.json") == (
        "split val of split.json: 1 of 2 images found in gt.json (matched by content_hash), "
        "1 selected; 1 missing (e.g. id 3 3.png)")


def test_without_hashes_images_are_matched_by_id(tmp_path):
    split = read_split(write_split(tmp_path, [entry(1)], [entry(2)]))
    match = match_split(images((1, ""), (2, ""), (3, "")), None, split, "all")
    assert (match.image_ids, match.matched_by) == ([1, 2], "id")


def test_a_customers_own_file_is_matched_by_source_image_id(tmp_path):
    own = tmp_path / "customer_a.json"
    split = read_split(write_split(tmp_path, [entry(1, "", str(own), 40)],
                                   [entry(2, "", str(own), 41), entry(3, "", "b.json", 41)]))
    gt = [{"id": 40, "width": 9, "height": 9}, {"id": 41, "width": 9, "height": 9}]
    match = match_split(gt, own, split, "val")
    # only the val entry of this file counts: b.json's image 41 is another picture
    assert (match.image_ids, match.matched_by, match.wanted) == ([41], "source_image_id", 1)


def test_same_content_on_both_sides_is_a_warning(tmp_path):
    split = read_split(write_split(tmp_path, [entry(1, "a")], [entry(2, "a")], by="filename"))
    match = match_split(images((1, "a"), (2, "a")), None, split, "val")
    assert match.image_ids == [1, 2]
    assert match.warnings == ["1 image contents are on both sides of the split (same bytes, "
                              "other file names); matched by content they are selected too"]
