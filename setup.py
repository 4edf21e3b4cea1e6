from setuptools import find_packages, setup

# tools/ holds the packet dumper and the measuring tools. It is installed as
# ``lgmp_tools`` (the lgmp-dump command lives there), never as a top-level
# package named ``tools``, which would collide with other projects' in
# site-packages. From a checkout, ``python -m tools.bench`` still works.
setup(
    packages=find_packages(include=["lgmp", "lgmp.*"]) + ["lgmp_tools"],
    package_dir={"lgmp_tools": "tools"},
)
