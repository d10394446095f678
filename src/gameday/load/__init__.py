"""Load generation: Locust users in a subprocess, streaming per-second samples.

The harness imports this package and :class:`LoadDriver`; it never imports locust
(which monkey-patches the interpreter with gevent). ``locustfile`` and ``runner``
are imported only inside the runner process.
"""

from gameday.load.driver import LoadDriver
from gameday.load.protocol import PROFILES, LoadConfig, LoadSample, Profile, ThinkTime

__all__ = ["PROFILES", "LoadConfig", "LoadDriver", "LoadSample", "Profile", "ThinkTime"]
