"""The privacy rules every public surface obeys, in one place.

K_MIN: an aggregate (cove or group) is shown publicly only while at least this many consenting people contribute to
it. The scorer, the hub's public view, the outputs and the privacy audit all import it from here.

The release mechanism that makes every public number (noise, cadence, stable cohort, the per-person budget) lives in
`lifepalette.privacy.release` and its accountant in `lifepalette.privacy.budget`; see docs/PRIVACY.md. This module
stays import-free so that `lifepalette.boundary` can take K_MIN from it.
"""

K_MIN = 5
