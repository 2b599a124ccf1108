"""ament_python package fin3r_ros: the ROS 2 layer (fin3r_ros) and the library (fin3r_lib).

Builds with `colcon build` in a ROS 2 workspace, and installs with `pip install -e .[train,eval,test]`
on a machine without ROS (see README.md).
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "fin3r_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["fin3r_ros", "fin3r_ros.*", "fin3r_lib", "fin3r_lib.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "setuptools",
        "numpy",
        "opencv-python-headless",
        "pillow",  # the VGGT and CUT3R preprocessing (the references resize with PIL)
        "PyYAML",
        "transforms3d",
        "torch>=2.1",
        "safetensors",
        "huggingface_hub",
        "peft>=0.13",
        "tqdm",
        "rosbags>=0.10",
        "rosbags-image>=0.10",
        "mcap>=1.1",  # the MCAP index reads (fin3r_lib/data/mcap_index.py), with its chunk codecs:
        "zstandard",
        "lz4",
    ],
    extras_require={
        "train": ["open3d-cpu; platform_machine == 'x86_64'", "matplotlib", "tensorboard"],  # fin3r train's logs
        # fin3r_lib.evaluation: ATE/RPE by evo, KD-trees by scipy, ICP and normals by open3d, plots by matplotlib
        "eval": ["evo>=1.30", "scipy", "open3d-cpu; platform_machine == 'x86_64'", "matplotlib"],
        "test": ["pytest", "ruff"],
        # the moge teacher's focal / z-shift solver (MoGe's own package, installed from its git, is used when present)
        "teacher": ["scipy"],
    },
    zip_safe=True,
    maintainer="fin3r_ros developers",
    maintainer_email="fin3r-ros@example.com",
    description="Fin3R-tuned VGGT / CUT3R 3D reconstruction for ROS 2, with the library to fine-tune it.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "reconstruct_node = fin3r_ros.node_entry:main",
            "reconstruct_lifecycle_node = fin3r_ros.lifecycle_node:main",
            "fin3r = fin3r_lib.cli.main:main",
        ],
    },
)
