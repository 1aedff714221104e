# Which chip the firmware runs on, from the running MicroPython itself: os.uname().machine ends in "with <MCU>"
# ("Generic ESP32 module with ESP32", "ESP32S3 module with ESP32S3", "ESP32C3 module with ESP32C3").
# None on the unix port (the virtual badge), which has no os.uname().


def running():
    import os

    try:
        machine = os.uname().machine
    except AttributeError:
        return None
    return machine.rsplit(" with ", 1)[-1].replace("-", "").lower()
