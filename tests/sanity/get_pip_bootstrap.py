"""Stand-in for the get-pip.py bootstrap script ansible-test downloads from a host this network cannot reach.

ansible-test runs the script as ``get-pip.py [pip install options] packages`` inside a fresh virtual
environment. This one installs the pip bundled with the standard library (ensurepip), then hands the
same arguments to ``pip install``, which fetches the exact versions ansible-test asks for from the
package index. `make sanity` copies it to ansible-test's cache path (see the Makefile).
"""

import ensurepip
import importlib
import os
import runpy
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main():
    had_config = "PIP_CONFIG_FILE" in os.environ
    ensurepip.bootstrap(upgrade=True, default_pip=True)
    if not had_config:
        # ensurepip points PIP_CONFIG_FILE at /dev/null for its own run; the real install must see the
        # site's pip configuration (index, CA certificates).
        os.environ.pop("PIP_CONFIG_FILE", None)
    importlib.invalidate_caches()
    arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    sys.argv = ["pip", "install"] + arguments
    runpy.run_module("pip", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
