# The ESP32 side of the HAL: machine.I2C/ADC/Pin/Timer, neopixel and bluetooth. Only this package touches hardware.
