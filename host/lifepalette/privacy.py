"""The privacy rule every public surface obeys, in one place.

K_MIN: an aggregate (cove or group) is shown publicly only while at least this many consenting people contribute to
it. The scorer, the hub's public view, the outputs and the privacy audit all import it from here.
"""

K_MIN = 5
