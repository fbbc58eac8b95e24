"""Offline stand-in for pip's get-pip.py, which ansible-test downloads from a
host this project's machines cannot reach. scripts/sanity puts it where
ansible-test caches that script. It gets the same arguments as the real one
(pip's install options, then the packages, such as pip==25.2): the venv gets
the pip its Python bundles (ensurepip), which then installs those packages
from the package index the machine's pip configuration names.

ansible-test runs it with almost no environment, and a bundled pip older
than 24.2 checks certificates against its own CA list, not the system's
(newer ones do): it is given the system's bundle, so that an index behind a
proxy that re-signs TLS with a CA the system trusts works too."""

import ensurepip
import ssl
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
arguments = [argument for argument in sys.argv[1:] if argument not in ("--no-setuptools", "--no-wheel")]
system_bundle = ssl.get_default_verify_paths().cafile
certificates = ["--cert", system_bundle] if system_bundle else []
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *certificates, *arguments]))
