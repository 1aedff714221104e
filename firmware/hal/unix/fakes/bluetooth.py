# Strict stand-in for the esp32 port's `bluetooth` (extmod/modbluetooth.c over NimBLE) for the fault runs.
# Checks the calls' arguments as the port does, raises OSError where NimBLE returns an error (faults
# ble-active-error, ble-register-error, advertise-error, notify-error), and plays one central
# that connects at 2 s and, unless the fault "no-mtu-exchange" is set, answers an MTU exchange with 247.
# A notification is cut to ATT MTU - 3 bytes, as NimBLE does; the central logs each one it receives.
import lp_fake
from micropython import const

FLAG_READ = const(0x0002)
FLAG_WRITE = const(0x0008)
FLAG_NOTIFY = const(0x0010)
_EPERM = const(1)
_EIO = const(5)
_EINVAL = const(22)
_ENOMEM = const(12)
_CONFIG = ("gap_name", "mtu", "rxbuf", "addr_mode", "io", "mitm", "le_secure", "bond", "mac")
_PENDING = []
_STATE = {"conn": 0, "mtu": 23, "asked": 0, "adverts": 0, "last_advert": -1, "notifies": 0}


class UUID:
    def __init__(self, value):
        if type(value) is int:
            if value < 0 or value > 0xFFFF:
                raise ValueError("invalid UUID")
        elif type(value) is str:
            if len(value.replace("-", "")) != 32:
                raise ValueError("invalid UUID")
        elif len(value) not in (2, 4, 16):
            raise ValueError("invalid UUID")
        self.value = value


class BLE:
    _one = []

    def __new__(cls):  # the port's BLE() is a singleton
        if not BLE._one:
            o = object.__new__(cls)
            o.on = False
            o.handler = None
            o.values = {}
            o.next_handle = 1
            BLE._one.append(o)
        return BLE._one[0]

    def _need_active(self):
        if not self.on:
            raise OSError(_EPERM)

    def active(self, on=None):
        if on is not None:
            if on and lp_fake.due("ble-active-error"):
                raise OSError(_EIO)  # the controller did not come up (mp_bluetooth_init's error)
            self.on = bool(on)
            lp_fake.radio_on = self.on
        return self.on

    def config(self, param=None, **kw):
        if param is not None:
            if kw or param not in _CONFIG:
                raise ValueError("unknown config param")
            return 256 if param == "mtu" else None
        for k in kw:
            if k not in _CONFIG:
                raise ValueError("unknown config param")
        if "mtu" in kw and not 23 <= kw["mtu"] <= 517:
            raise ValueError("invalid MTU")

    def irq(self, handler):
        self.handler = handler

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        self._need_active()
        if adv_data is not None and len(adv_data) > 31 or resp_data is not None and len(resp_data) > 31:
            raise OSError(_EINVAL)
        if lp_fake.due("advertise-error") and lp_fake.now() < lp_fake.FAULTS["advertise-error"] + 3000:
            raise OSError(_EIO)
        _STATE["adverts"] += 1
        _STATE["last_advert"] = lp_fake.now()
        if adv_data is not None:
            self.last_adv = bytes(adv_data)

    def gap_scan(self, duration_ms, interval_us=1280000, window_us=11250, active=False):
        self._need_active()
        if duration_ms is not None and window_us > interval_us:
            raise OSError(_EINVAL)

    def gatts_register_services(self, services_definition):
        services = services_definition
        self._need_active()
        if lp_fake.due("ble-register-error"):
            raise OSError(_ENOMEM)  # NimBLE could not allocate the GATT table
        out = []
        for uuid, chars in services:
            if not isinstance(uuid, UUID):
                raise TypeError("expecting a UUID")
            handles = []
            self.next_handle += 1
            for c in chars:
                if not isinstance(c[0], UUID) or type(c[1]) is not int:
                    raise TypeError("characteristic is (UUID, flags)")
                handles.append(self.next_handle + 1)
                self.values[self.next_handle + 1] = [b"", 20]
                self.next_handle += 2
            out.append(tuple(handles))
        return tuple(out)

    def _value(self, handle):
        if handle not in self.values:
            raise OSError(_EINVAL)
        return self.values[handle]

    def gatts_read(self, value_handle):
        return self._value(value_handle)[0]

    def gatts_write(self, value_handle, data, send_update=False):
        self._need_active()
        self._value(value_handle)[0] = bytes(data)

    def gatts_set_buffer(self, value_handle, len, append=False):
        self._value(value_handle)[1] = len

    def gatts_notify(self, conn_handle, value_handle, data=None):
        self._need_active()
        v = self._value(value_handle)
        if conn_handle != _STATE["conn"] or not conn_handle:
            raise OSError(_EINVAL)  # not connected (NimBLE: BLE_HS_ENOTCONN)
        if lp_fake.due("notify-error") and lp_fake.now() < lp_fake.FAULTS["notify-error"] + 3000:
            raise OSError(_ENOMEM)  # NimBLE out of mbufs
        data = v[0] if data is None else data
        got = data[:_STATE["mtu"] - 3]
        _STATE["notifies"] += 1
        if len(got) < len(data):
            lp_fake.log("central got %d of %d bytes (cut at MTU %d - 3)" % (len(got), len(data), _STATE["mtu"]))

    def gattc_exchange_mtu(self, conn_handle):
        self._need_active()
        if conn_handle != _STATE["conn"] or not conn_handle:
            raise OSError(_EINVAL)
        _STATE["asked"] += 1
        if not lp_fake.due("no-mtu-exchange"):
            _PENDING.append((21, (conn_handle, 247)))


def _poll():
    """Deliver what the central does (the IRQs NimBLE would raise), from machine.idle()."""
    ble = BLE._one[0] if BLE._one else None
    if ble is None or ble.handler is None or not ble.on:
        return
    if not _STATE["conn"] and lp_fake.ms >= 2000:
        _STATE["conn"] = 64
        _PENDING.append((1, (64, 0, memoryview(b"\x11\x22\x33\x44\x55\x66"))))
    while _PENDING:
        event, data = _PENDING.pop(0)
        if event == 21:
            _STATE["mtu"] = data[1]
        ble.handler(event, data)


def _summary():
    return "adverts=%d last_advert=%d notifies=%d mtu=%d" % (
        _STATE["adverts"], _STATE["last_advert"], _STATE["notifies"], _STATE["mtu"])
