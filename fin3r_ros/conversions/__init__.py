"""ROS message <-> numpy conversions: the one place where messages become arrays and back.

cv_bridge / sensor_msgs_py run underneath when they import, numpy otherwise (see `_compat`); every
function has the same contract either way and raises `ConversionError` for bad input.
"""

from .camera_info import (
    CameraModel,
    camera_info_to_model,
    check_camera_info_matches,
    model_to_camera_info,
    scale_intrinsics,
)
from .errors import ConversionError
from .image import (
    array_to_image,
    compressed_to_rgb,
    depth_image_to_array,
    depth_to_mono16_image,
    image_to_rgb,
    rgb_to_compressed,
    rgb_to_image,
)
from .pointcloud import cloud_to_arrays, points_to_cloud
from .stamp import ns_to_stamp, seconds_to_stamp, stamp_to_ns, stamp_to_seconds
from .transform import matrix_to_pose, matrix_to_transform, pose_to_matrix, transform_to_matrix

__all__ = [
    "CameraModel",
    "ConversionError",
    "array_to_image",
    "camera_info_to_model",
    "check_camera_info_matches",
    "cloud_to_arrays",
    "compressed_to_rgb",
    "depth_image_to_array",
    "depth_to_mono16_image",
    "image_to_rgb",
    "matrix_to_pose",
    "matrix_to_transform",
    "model_to_camera_info",
    "ns_to_stamp",
    "points_to_cloud",
    "pose_to_matrix",
    "rgb_to_compressed",
    "rgb_to_image",
    "scale_intrinsics",
    "seconds_to_stamp",
    "stamp_to_ns",
    "stamp_to_seconds",
    "transform_to_matrix",
]
