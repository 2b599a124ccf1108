"""ROS message <-> numpy conversions: the one place where messages become arrays and back.

cv_bridge / sensor_msgs_py run underneath when they import, numpy otherwise (see `_compat`); every
function has the same contract either way and raises `ConversionError` for bad input.
"""

from fin3r_lib.lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "CameraModel": "fin3r_ros.conversions.camera_info",
        "camera_info_to_model": "fin3r_ros.conversions.camera_info",
        "check_camera_info_matches": "fin3r_ros.conversions.camera_info",
        "model_to_camera_info": "fin3r_ros.conversions.camera_info",
        "scale_intrinsics": "fin3r_ros.conversions.camera_info",
        "ConversionError": "fin3r_ros.conversions.errors",
        "array_to_image": "fin3r_ros.conversions.image",
        "compressed_to_rgb": "fin3r_ros.conversions.image",
        "depth_image_to_array": "fin3r_ros.conversions.image",
        "depth_to_mono16_image": "fin3r_ros.conversions.image",
        "image_to_rgb": "fin3r_ros.conversions.image",
        "rgb_to_compressed": "fin3r_ros.conversions.image",
        "rgb_to_image": "fin3r_ros.conversions.image",
        "cloud_to_arrays": "fin3r_ros.conversions.pointcloud",
        "points_to_cloud": "fin3r_ros.conversions.pointcloud",
        "ns_to_stamp": "fin3r_ros.conversions.stamp",
        "seconds_to_stamp": "fin3r_ros.conversions.stamp",
        "stamp_to_ns": "fin3r_ros.conversions.stamp",
        "stamp_to_seconds": "fin3r_ros.conversions.stamp",
        "matrix_to_pose": "fin3r_ros.conversions.transform",
        "matrix_to_transform": "fin3r_ros.conversions.transform",
        "pose_to_matrix": "fin3r_ros.conversions.transform",
        "transform_to_matrix": "fin3r_ros.conversions.transform",
    },
)
