# BLE on the ESP32 (MicroPython `bluetooth`, NimBLE). One job: move 24-byte frames.
# - each second's frame goes out as a 31-byte legacy advert (connectable ADV_IND, 200 ms interval, so ~5 copies)
#   and as a notification on the telemetry characteristic to every connected hub
# - GATT: the Life Palette service (telemetry notify/read, control write, backlog notify), Battery (0x180F) and
#   Device Information (0x180A). The control characteristic gets a 64-byte buffer (gatts_set_buffer): the default
#   20 bytes would truncate a 24-byte command frame.
# - the same frame also goes out on USB serial, SLIP-framed (protocol/slip_encoder.py), for a hub with the badge plugged in
# - a duty-cycled passive scan (30 ms every 1 s) for group-colour adverts; the IRQ handler only does the 8-byte
#   prefix check and copies into a preallocated slot; decryption happens later in the main loop (app.radio)
# - every `bluetooth` call that NimBLE can fail (gap_advertise, gatts_notify, gap_scan, gatts_write) is caught and
#   counted in `errors`, never fatal; `failing` counts seconds in a row whose advert failed (the HAL stops feeding
#   the watchdog when the radio has been dead too long)
# - NimBLE cuts a notification to ATT MTU - 3 bytes: a central that never exchanges MTU would get every 24-byte
#   frame as 20 bytes that fail their MIC. So the badge asks for an MTU exchange on connect and notifies a central
#   only once the exchange gave MTU >= _MIN_MTU; a link that cannot reach it gets adverts only (counted in errors[4])
# - ble.active(True) and gatts_register_services are tried _TRIES times (each failure logged); then the constructor
#   raises OSError with the reason and the badge goes to safe mode (never a crash loop, never the REPL)
import sys
import time

import bluetooth
from micropython import const

from protocol import frame
from protocol.slip_encoder import slip_encode

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_SCAN_RESULT = const(5)
_IRQ_MTU_EXCHANGED = const(21)
_MIN_MTU = const(27)  # 24-byte frame + 3 bytes of ATT header
_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)
_SLOTS = const(4)
_ADV_INTERVAL_US = const(200000)
_SCAN_INTERVAL_US = const(1000000)
_SCAN_WINDOW_US = const(30000)
_TRIES = const(3)
_RETRY_MS = const(200)


def _services():
    """The GATT table (ours, Battery, Device Information) and the control buffer size. Needed once, at bring-up:
    protocol.gatt is let go of after, so its strings do not stay on the heap for the run."""
    from app.start import forget_module

    from protocol import gatt

    uuid = bluetooth.UUID
    lp = (uuid(gatt.SERVICE_UUID), ((uuid(gatt.TELEMETRY_UUID), _FLAG_READ | _FLAG_NOTIFY),
                                    (uuid(gatt.CONTROL_UUID), _FLAG_WRITE), (uuid(gatt.BACKLOG_UUID), _FLAG_NOTIFY)))
    bas = (uuid(0x180F), ((uuid(0x2A19), _FLAG_READ | _FLAG_NOTIFY),))
    dis = (uuid(0x180A), ((uuid(0x2A29), _FLAG_READ), (uuid(0x2A24), _FLAG_READ)))
    control_buffer = gatt.CONTROL_BUFFER
    del gatt
    forget_module("protocol", "gatt")
    return (lp, bas, dis), control_buffer


class Esp32Radio:
    def __init__(self, dev_id, company, model, group_prefix, usb=None):
        self.company = company
        if usb is None:
            usb = getattr(sys.stdout, "buffer", None)
        self.usb = usb  # where SLIP frames go (USB serial on the badge)
        self.prefix = group_prefix  # 8 bytes: flags AD, manufacturer AD header, company, group-colour hdr
        self.conns = set()  # connected centrals that reached _MIN_MTU: these get notifications
        self.fresh = []  # connected, MTU exchange not asked yet (asked from the main loop, not the IRQ)
        self.errors = [0, 0, 0, 0, 0]  # advertise, notify, scan, write, MTU too small
        self.failing = 0
        self.slots = [bytearray(31) for _ in range(_SLOTS)]
        self.lens = bytearray(_SLOTS)
        self.head = 0
        self.tail = 0
        self.out = bytearray(31)
        ble = bluetooth.BLE()
        self.ble = ble
        self._try("active(True)", ble.active, True)
        ble.config(gap_name="LP-%04x" % dev_id)
        services, control_buffer = _services()
        ((self.h_telem, self.h_ctrl, self.h_backlog), (self.h_batt,), (h_maker, h_model)) = \
            self._try("gatts_register_services", ble.gatts_register_services, services)
        services = None
        ble.gatts_set_buffer(self.h_ctrl, control_buffer)
        self._write(h_maker, b"Life Palette")
        self._write(h_model, model.encode())
        ble.irq(self._irq)
        try:
            ble.gap_scan(0, _SCAN_INTERVAL_US, _SCAN_WINDOW_US, False)
        except OSError:
            self.errors[2] += 1  # no group colours then; frames still go out

    def _try(self, what, call, arg):
        """Bring-up calls NimBLE can fail (controller start, no memory for the GATT table): _TRIES tries, each
        failure logged, then OSError with the reason, for safe mode (a reset would only fail the same way)."""
        for i in range(1, _TRIES + 1):
            try:
                return call(arg)
            except OSError as exc:
                err = "%s: %s" % (type(exc).__name__, exc)
                print("BLE %s failed (%d of %d): %s" % (what, i, _TRIES, err))
                time.sleep_ms(_RETRY_MS)
        raise OSError("BLE %s failed %d times: %s" % (what, _TRIES, err))

    def _write(self, handle, data):
        try:
            self.ble.gatts_write(handle, data)
        except OSError:
            self.errors[3] += 1

    def _notify(self, handle, data):
        for conn in self.conns:
            try:
                self.ble.gatts_notify(conn, handle, data)  # type: ignore[call-arg]  # stub lacks conn
            except OSError:
                self.errors[1] += 1

    def _exchange_mtu(self):
        while self.fresh:
            conn = self.fresh.pop()
            try:
                self.ble.gattc_exchange_mtu(conn)
            except OSError:
                self.errors[4] += 1

    def _queue(self, data):
        """Copy a received packet into the next free slot (IRQ context: no allocation)."""
        nxt = (self.head + 1) % _SLOTS
        if nxt == self.tail:
            return  # full: drop, the hub repeats group colours every second
        slot = self.slots[self.head]
        n = len(data)
        for i in range(n):
            slot[i] = data[i]
        self.lens[self.head] = n
        self.head = nxt

    def _irq(self, event, data):
        if event == _IRQ_SCAN_RESULT:
            adv = data[4]
            if len(adv) != 31:
                return
            p = self.prefix
            for i in range(8):
                if adv[i] != p[i]:
                    return
            self._queue(adv)
        elif event == _IRQ_GATTS_WRITE:
            if data[1] == self.h_ctrl:
                self._queue(self.ble.gatts_read(self.h_ctrl))
        elif event == _IRQ_CENTRAL_CONNECT:
            self.fresh.append(data[0])
        elif event == _IRQ_MTU_EXCHANGED:  # asked by us, or by the central first (BlueZ does)
            if data[0] in self.fresh:
                self.fresh.remove(data[0])
            if data[1] >= _MIN_MTU:
                self.conns.add(data[0])
            else:
                self.errors[4] += 1
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self.conns.discard(data[0])
            if data[0] in self.fresh:
                self.fresh.remove(data[0])

    def send(self, frame24):
        self._exchange_mtu()
        try:
            self.ble.gap_advertise(_ADV_INTERVAL_US, adv_data=frame.advert(frame24, self.company), connectable=True)
            self.failing = 0
        except OSError:
            self.errors[0] += 1
            self.failing += 1
        self._write(self.h_telem, frame24)
        if self.usb is not None:
            try:
                self.usb.write(slip_encode(frame24))
            except OSError:
                pass
        self._notify(self.h_telem, frame24)

    def send_backlog(self, frame24):
        self._notify(self.h_backlog, frame24)

    def can_backlog(self):
        return len(self.conns) > 0

    def recv(self):
        """The next received packet (a copy), or None."""
        if self.tail == self.head:
            return None
        n = self.lens[self.tail]
        data = bytes(self.slots[self.tail][:n])
        self.tail = (self.tail + 1) % _SLOTS
        return data

    def battery(self, pct):
        self._write(self.h_batt, bytes((pct & 0x7F,)))
