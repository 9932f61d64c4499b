"""Molecule fixture: kmock as the management cluster's API, with the tests' stand-in Cluster API and CAPA
controllers reconciling each named namespace, until SIGTERM. Writes <work>/kubeconfig, then <work>/ready."""

import os
import signal
import sys
import threading

from ansible_collections.petra.core.tests.support.capi_controllers import CapiControllers
from ansible_collections.petra.core.tests.support.kube import KubeAPI


def main(work, namespaces):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with KubeAPI(work) as kube:
        controllers = [CapiControllers(kube, name, first_address=10 + 300 * index, interval=0.1)
                       for index, name in enumerate(namespaces)]
        for controller in controllers:
            controller.start()
        with open(os.path.join(work, "ready"), "w") as handle:
            handle.write(kube.url)
        while not stop.wait(1):
            broken = [c.error for c in controllers if c.error is not None]
            if broken:
                raise SystemExit("a stand-in controller stopped: %s" % broken[0])
        for controller in controllers:
            controller.__exit__()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
