# The unix side of the HAL: the same badge app as a "virtual badge" on the MicroPython unix port.
