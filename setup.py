from setuptools import find_packages, setup

setup(
    name="ee-asr",
    version="0.1.0",
    description="Early-exit speech recognition recipes on top of espnet's building blocks",
    packages=find_packages(include=["ee_asr", "ee_asr.*"]),
    python_requires=">=3.10",
    # torch and espnet are installed by utils/install_python.sh (see the README): listing them
    # here would let pip replace a user's torch, or fail on espnet's setuptools pin.
    install_requires=[line.strip() for line in open("requirements.txt")
                      if line.strip() and not line.startswith("#") and line.strip() != "pytest"],
)
