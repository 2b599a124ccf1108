"""Which library reads message bytes into arrays: the ROS one when it imports, numpy otherwise.

`cv_bridge` and `sensor_msgs_py.point_cloud2` ship with every ROS 2 install but are on no package
registry, so a pip-only machine uses the numpy readers. Both readers of a kind return the same
arrays; the public conversions validate each message first and normalise what the reader returns,
so their contract does not depend on the reader. `image_codec` and `cloud_codec` are the selected
ones (tests swap them).

Messages are built by one numpy writer on every install: it fills the message's own data buffer,
where `cv2_to_imgmsg` / `create_cloud` would copy a finished array into a new buffer once more.
"""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image, PointCloud2

from ._buffer import HOST_BIGENDIAN, message_bytes

try:
    from cv_bridge import CvBridge
except ImportError:
    CvBridge = None

try:
    from sensor_msgs_py import point_cloud2
except ImportError:
    point_cloud2 = None


class NumpyImageCodec:
    """Image bytes -> arrays with numpy strides (honours `step` and `is_bigendian`)."""

    name = "numpy"

    def image_array(self, msg: Image, dtype: np.dtype, channels: int) -> np.ndarray:
        """(H, W, C) native-endian copy of a validated Image's pixels."""
        stored = dtype.newbyteorder(">" if msg.is_bigendian else "<")
        view = np.ndarray(
            (msg.height, msg.width, channels),
            dtype=stored,
            buffer=message_bytes(msg.data),
            strides=(msg.step, channels * dtype.itemsize, dtype.itemsize),
        )
        return view.astype(dtype)

    def decode_compressed(self, msg: CompressedImage) -> np.ndarray | None:
        """OpenCV decode (BGR/BGRA/grey order, 8 or 16 bit) of the bytes; None when undecodable."""
        return cv2.imdecode(message_bytes(msg.data), cv2.IMREAD_UNCHANGED)


class BridgeImageCodec(NumpyImageCodec):
    """cv_bridge, except for rows it mis-strides.

    cv_bridge's Python reader assumes `step` is a whole number of pixels and swaps byte order with
    `ndarray.newbyteorder` (gone in numpy 2); those messages go through the numpy reader.
    """

    name = "cv_bridge"

    def __init__(self) -> None:
        self._bridge = CvBridge()

    def image_array(self, msg: Image, dtype: np.dtype, channels: int) -> np.ndarray:
        pixel = channels * dtype.itemsize
        if msg.step % pixel or (dtype.itemsize > 1 and bool(msg.is_bigendian) != HOST_BIGENDIAN):
            return super().image_array(msg, dtype, channels)
        values = self._bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")  # a view of msg.data when unpadded
        return values.reshape(msg.height, msg.width, channels).astype(dtype)

    def decode_compressed(self, msg: CompressedImage) -> np.ndarray | None:
        return self._bridge.compressed_imgmsg_to_cv2(msg, desired_encoding="passthrough")


class NumpyCloudCodec:
    """PointCloud2 bytes -> structured arrays with numpy."""

    name = "numpy"

    def read(self, msg: PointCloud2, dtype: np.dtype) -> np.ndarray:
        """Structured (N,) array of a validated cloud; `dtype` is the layout of `msg.fields`."""
        return np.frombuffer(message_bytes(msg.data), dtype=dtype, count=msg.width * msg.height)


class RosCloudCodec(NumpyCloudCodec):
    """sensor_msgs_py.point_cloud2.read_points (it lays out `msg.fields` as the numpy reader does)."""

    name = "sensor_msgs_py"

    def read(self, msg: PointCloud2, dtype: np.dtype) -> np.ndarray:
        # read_points byte-swaps in place (it changes msg.data) when the cloud's byte order is not the host's.
        return point_cloud2.read_points(msg)


IMAGE_CODECS: dict[str, NumpyImageCodec | None] = {
    "numpy": NumpyImageCodec(),
    "cv_bridge": BridgeImageCodec() if CvBridge is not None else None,
}
CLOUD_CODECS: dict[str, NumpyCloudCodec | None] = {
    "numpy": NumpyCloudCodec(),
    "sensor_msgs_py": RosCloudCodec() if point_cloud2 is not None else None,
}
image_codec: NumpyImageCodec = IMAGE_CODECS["cv_bridge"] or IMAGE_CODECS["numpy"]
cloud_codec: NumpyCloudCodec = CLOUD_CODECS["sensor_msgs_py"] or CLOUD_CODECS["numpy"]
