"""Where existing databases find the state counters' class.

`StateCounts` was defined in this module until the model, the Prometheus
format and the monitoring views were separated. The pickles of every
site created before then name `gocept.lms.metrics.StateCounts`, so this
name has to stay importable; the class lives in `statecounts.py`.
"""

from gocept.lms.statecounts import StateCounts  # noqa: F401 (old pickles)
