"""Build hook: a wheel carries the workflow, the default configurations (with the code lists)
and the manuscript source as package data under ``phm_eval/_bundle/``, so that an installed
package runs outside a clone (``phm_eval.paths`` finds them there). Everything else is in
pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED_FOLDERS = ("workflow", "config", "manuscript")


class BuildWithBundle(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return  # an editable install reads the clone's own folders
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "phm_eval" / "_bundle"
        for name in BUNDLED_FOLDERS:
            shutil.copytree(root / name, target / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithBundle})
