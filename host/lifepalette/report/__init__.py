"""The facilitator's session report (`lifepalette report`): one self-contained, printable HTML page.

`data` assembles what the page shows from rows the store hands over (sans-I/O, unit-tested), `load` reads those
rows from a hub database, `render` turns the assembled report into HTML with inline SVG. Only released public
numbers (hub/journey.py), counts and shares over at least K_MIN wearers reach the page: no device id, no
per-person number.
"""
