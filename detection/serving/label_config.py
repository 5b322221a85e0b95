"""A Label Studio labeling config, read for what pre-labels need: the ``RectangleLabels``
control, the ``Image`` it labels, and its label values.

    <View>
      <Image name="image" value="$image"/>
      <RectangleLabels name="label" toName="image">
        <Label value="Car"/><Label value="Truck"/>
      </RectangleLabels>
    </View>

gives ``LabelingConfig(from_name="label", to_name="image", image_key="image",
labels=("Car", "Truck"))``: regions are written with that ``from_name`` / ``to_name``, and the
image URL is read from ``task["data"]["image"]``. ``LabelingConfig`` lives in
``taxdet.detection.prediction.ls_format`` (which also writes such configs).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from taxdet.core.errors import InputError
from taxdet.detection.prediction.ls_format import LabelingConfig

MAX_CONFIG_CHARS = 1_000_000  # a labeling config is a few kB; refuse anything huge


class LabelConfigError(InputError, ValueError):
    """A labeling config without a usable ``RectangleLabels`` on an ``Image``."""


def _parse(xml: str) -> ET.Element:
    if not isinstance(xml, str) or not xml.strip():
        raise LabelConfigError("the labeling config is empty")
    if len(xml) > MAX_CONFIG_CHARS:
        raise LabelConfigError(f"the labeling config has {len(xml)} characters, more than "
                               f"{MAX_CONFIG_CHARS}")
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise LabelConfigError(f"the labeling config is not valid XML ({exc})") from None


def _image_key(root: ET.Element, to_name: str) -> str:
    """The task data key of the ``Image`` tag named ``to_name`` (``$image`` -> ``image``)."""
    for tag in root.iter("Image"):
        if tag.get("name") == to_name:
            value = tag.get("value", "")
            if not value.startswith("$") or len(value) < 2:
                raise LabelConfigError(f"<Image name={to_name!r}>: value {value!r} is not a "
                                       "task data reference like \"$image\"")
            return value[1:]
    raise LabelConfigError(f"<RectangleLabels toName={to_name!r}>: no <Image name={to_name!r}>")


def read_labeling_config(xml: str) -> LabelingConfig:
    """The first ``RectangleLabels`` of ``xml`` (``LabelConfigError`` naming what is missing)."""
    root = _parse(xml)
    control = next(root.iter("RectangleLabels"), None)
    if control is None:
        raise LabelConfigError("the labeling config has no <RectangleLabels> control: this "
                               "service pre-labels rectangles")
    from_name, to_name = control.get("name"), control.get("toName")
    if not from_name or not to_name:
        raise LabelConfigError("<RectangleLabels> needs both a name and a toName attribute")
    labels = tuple(dict.fromkeys(lab.get("value", "") for lab in control.iter("Label")))
    if not labels or "" in labels:
        raise LabelConfigError(f"<RectangleLabels name={from_name!r}>: every <Label> needs a "
                               "value, and there must be at least one")
    return LabelingConfig(from_name, to_name, _image_key(root, to_name), labels)
