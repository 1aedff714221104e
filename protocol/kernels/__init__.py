"""Fixed-point signal kernels (issue 3): one integer code for MicroPython, CPython and (twin) numpy.

ppg.py (pulse: HR, RMSSD, quality), eda.py (skin conductance: SCL, SCRs), motion.py (accelerometer and skin
contact), temp.py (skin temperature), pipeline.py (all of them, once per second into a telemetry record).
Every intermediate stays inside |v| < 2**30 (MicroPython small ints on ESP32); Q formats are documented at the top
of each module.
"""
