# Sensor drivers. They talk to a machine.I2C-like bus or an ADC-like object handed in by the HAL.
