# A simulated I2C bus with register-level models of the badge's chips, plus ADC and Pin stand-ins.
# SimI2C has machine.I2C's memory-transfer methods, so the real drivers run against it unchanged. The models follow
# the datasheets closely enough for the drivers' use: identity registers, reset, shutdown / power-down (no data is
# produced while powered down), the MAX3010x FIFO with read/write pointers, overflow counter and roll-over, and the
# LIS3DH's auto-increment (sub-address bit 7), full-scale setting, data-ready / overrun status and 32-sample FIFO.
ENODEV = 19


class SimI2C:
    def __init__(self):
        self.devices = {}
        self.transactions = 0

    def attach(self, addr, model):
        self.devices[addr] = model
        return model

    def _dev(self, addr):
        dev = self.devices.get(addr)
        if dev is None:
            raise OSError(ENODEV)
        self.transactions += 1
        return dev

    def scan(self):
        return sorted(self.devices)

    def readfrom_mem_into(self, addr, reg, buf):
        dev = self._dev(addr)
        for i in range(len(buf)):
            buf[i] = dev.read(reg)
            reg = dev.next_reg(reg)

    def readfrom_mem(self, addr, reg, n):
        buf = bytearray(n)
        self.readfrom_mem_into(addr, reg, buf)
        return bytes(buf)

    def writeto_mem(self, addr, reg, buf):
        dev = self._dev(addr)
        for i in range(len(buf)):
            dev.write(reg, buf[i])
            reg = dev.next_reg(reg)


class Max3010xModel:
    """MAX30102/MAX30101: registers 0x00-0xFF, 32-sample FIFO of 3-byte samples (one LED slot active)."""

    def __init__(self):
        self.regs = bytearray(256)
        self.fifo = bytearray(96)
        self.byte_index = 0
        self.n = 0
        self.resets = 0
        self.dropped = 0
        self._reset()

    def _reset(self):
        r = self.regs
        for i in range(256):
            r[i] = 0
        r[0x00] = 0x01  # PWR_RDY after power-up
        r[0xFE] = 0x03  # REV_ID
        r[0xFF] = 0x15  # PART_ID
        self.byte_index = 0
        self.n = 0
        self.resets += 1

    def next_reg(self, reg):
        return reg if reg == 0x07 else (reg + 1) & 0xFF

    def shutdown(self):
        return bool(self.regs[0x09] & 0x80)

    def led_code(self):
        """Drive code of the LED in use: red LED1 in HR mode; in multi-LED mode the LED slot 1 names (1 red,
        2 IR, 3 green)."""
        r = self.regs
        if (r[0x09] & 7) == 7:
            slot = r[0x11] & 7
            return r[0x0B + slot] if 1 <= slot <= 3 else 0
        return r[0x0C]

    def push_sample(self, value):
        """The optical front end produced a sample. Ignored in shutdown or with no mode set (LEDs dark)."""
        r = self.regs
        if self.shutdown() or (r[0x09] & 7) == 0 or self.led_code() == 0:
            return False
        if self.n == 32:
            if r[0x05] < 31:
                r[0x05] += 1
            if not r[0x08] & 0x10:  # no roll-over: the new sample is lost
                self.dropped += 1
                return False
            r[0x06] = (r[0x06] + 1) & 31  # roll-over: the oldest sample is overwritten
            self.n -= 1
        i = r[0x04] * 3
        value &= 0x3FFFF
        self.fifo[i] = value >> 16
        self.fifo[i + 1] = (value >> 8) & 0xFF
        self.fifo[i + 2] = value & 0xFF
        r[0x04] = (r[0x04] + 1) & 31
        self.n += 1
        return True

    def read(self, reg):
        r = self.regs
        if reg == 0x07:
            if self.n == 0:
                return 0
            value = self.fifo[r[0x06] * 3 + self.byte_index]
            self.byte_index += 1
            if self.byte_index == 3:
                self.byte_index = 0
                r[0x06] = (r[0x06] + 1) & 31
                r[0x05] = 0  # the datasheet: popping a whole sample clears OVF_COUNTER
                self.n -= 1
            return value
        if reg == 0x00:
            value = r[0x00]
            r[0x00] = 0  # interrupt status clears on read
            return value
        return r[reg]

    def write(self, reg, value):
        if reg in (0xFE, 0xFF, 0x07):
            return  # read-only
        if reg == 0x09 and value & 0x40:
            self._reset()
            return
        self.regs[reg] = value
        if reg in (0x04, 0x06):
            self.byte_index = 0
            self.n = (self.regs[0x04] - self.regs[0x06]) & 31


class Lis3dhModel:
    """LIS3DH: WHO_AM_I 0x33, CTRL_REG1 (ODR, power-down), CTRL_REG4 (BDU, FS, HR), CTRL_REG5 FIFO_EN, STATUS
    ZYXDA/ZYXOR, OUT_X_L..OUT_Z_H, and the 32-sample FIFO (FIFO_CTRL_REG mode, FIFO_SRC_REG OVRN_FIFO / EMPTY /
    FSS). The chip measures on its own clock at its ODR: set_mg() is one finished measurement (the host's stream
    places them at the chip's times). In stream mode a full FIFO drops its oldest sample; reading OUT_Z_H pops the
    FIFO, and the auto-increment rolls back from 0x2D to 0x28 (datasheet: burst reads of several samples)."""

    def __init__(self):
        self.regs = bytearray(0x40)
        self.regs[0x0F] = 0x33
        self.regs[0x20] = 0x07  # power-on default: power-down, all axes enabled
        self.turning_on = False
        self.fifo = bytearray(192)  # 32 samples x 6 bytes (X_L, X_H, Y_L, Y_H, Z_L, Z_H)
        self.head = 0
        self.n = 0
        self.dropped = 0

    def _fifo_on(self):
        return bool(self.regs[0x24] & 0x40) and (self.regs[0x2E] >> 6) != 0

    def next_reg(self, reg):
        if reg & 0x80:
            if (reg & 0x7F) == 0x2D and self.regs[0x24] & 0x40:
                return 0xA8
            return ((reg & 0x7F) + 1) | 0x80
        return reg

    def powered_down(self):
        return (self.regs[0x20] & 0xF0) == 0

    def set_mg(self, x, y, z):
        """The sensor finished a measurement of (x, y, z) milli-g; ignored in power-down and during the turn-on
        time after it (datasheet: 1/ODR + 1 ms, longer than the badge's sampling interval: the first measurement is
        lost). True if it was stored."""
        if self.powered_down():
            return False
        if self.turning_on:
            self.turning_on = False
            return False
        r = self.regs
        fs = (r[0x23] >> 4) & 3
        mg_per_digit = (1, 2, 4, 12)[fs]
        full = (2000, 4000, 8000, 16000)[fs]
        if self._fifo_on():
            if self.n == 32:
                if (r[0x2E] >> 6) == 1:  # FIFO mode: stops when full
                    self.dropped += 1
                    return False
                self.head = (self.head + 1) & 31  # stream mode: the oldest is overwritten
                self.n = 31
                self.dropped += 1
            base = ((self.head + self.n) & 31) * 6
            self.n += 1
        else:
            base = -1
            if r[0x27] & 0x08:
                r[0x27] |= 0x80  # ZYXOR: the previous measurement was overwritten unread
        vals = (x, y, z)
        for i in range(3):
            v = vals[i]
            if v > full - 1:
                v = full - 1
            elif v < -full:
                v = -full
            raw = ((v // mg_per_digit) << 4) & 0xFFFF
            if base >= 0:
                self.fifo[base + 2 * i] = raw & 0xFF
                self.fifo[base + 2 * i + 1] = raw >> 8
            else:
                r[0x28 + 2 * i] = raw & 0xFF
                r[0x29 + 2 * i] = raw >> 8
        r[0x27] |= 0x08
        return True

    def read(self, reg):
        reg &= 0x7F
        if reg >= len(self.regs):
            return 0
        r = self.regs
        if 0x28 <= reg <= 0x2D and self._fifo_on():
            if self.n == 0:
                return 0
            value = self.fifo[self.head * 6 + reg - 0x28]
            if reg == 0x2D:  # the whole sample was read: the FIFO moves on
                self.head = (self.head + 1) & 31
                self.n -= 1
                if self.n == 0:
                    r[0x27] &= 0x77
            return value
        if reg == 0x2F:
            if not self._fifo_on():
                return 0x20
            return (0x40 if self.n == 32 else 0) | (0x20 if self.n == 0 else 0) | (self.n & 31)
        if reg == 0x2D:
            r[0x27] &= 0x77  # ZYXDA and ZYXOR clear once the data is read
        return r[reg]

    def write(self, reg, value):
        reg &= 0x7F
        if reg in (0x0F, 0x27, 0x2F) or reg >= len(self.regs) or 0x28 <= reg <= 0x2D:
            return
        if reg == 0x20:
            if self.powered_down() and value & 0xF0:
                self.turning_on = True
            if not value & 0xF0:
                self.n = 0  # power-down empties the FIFO
        if reg == 0x2E and not value & 0xC0:
            self.n = 0  # bypass mode resets the FIFO
        self.regs[reg] = value


class SimADC:
    """machine.ADC stand-in: read_uv() gives the calibrated microvolts the host's ESP32 ADC model produced (the
    transfer curve itself is simulated on the host: lifepalette.sim.silicon); read_u16() the nominal 11 dB raw."""

    def __init__(self, uv=0):
        self.uv = uv

    def read_uv(self):
        return self.uv

    def read_u16(self):
        c = (self.uv - 142000) * 10 // 8060
        return (0 if c < 0 else (4095 if c > 4095 else c)) << 4


class SimPin:
    def __init__(self, value=0):
        self._value = value

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0
        return None

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0
