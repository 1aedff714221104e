# The badge's side of the wire protocol, sans-I/O: seal outgoing frames, and accept hub-to-badge frames.
# Outgoing: a new frame each second (counter + 1) -> the HAL sends it as a 31-byte legacy advert and a GATT notify
# (esp32) or a UDP datagram (virtual badge). Incoming: group-colour adverts (group key) and commands (device key),
# checked with protocol.frame's shared checks in the verifier's order (envelope, version, sealed bit, type, then id,
# counter strictly above the hub's last one, then the MIC); replays and forgeries are dropped and counted. Adverts
# from other devices fail frame.unwrap's byte-by-byte prefix compare before any decryption.
from protocol import frame


class Link:
    def __init__(self, cfg):
        self.dev_id = cfg["dev_id"]
        self.key = cfg["key"]
        self.company = cfg["company_id"]
        self.group_id = cfg["group_id"]
        self.group_key = None
        self.last = [-1, -1]  # last accepted hub counter: commands, group colour
        self.ftype = 0  # of the last accepted frame
        self.record = None
        self._key_parts = [None, None, -1]  # part 0, part 1, group id they belong to
        if cfg["group_key"] is not None:
            self.set_group_key(self.group_id, cfg["group_key"])
        self.prefix = frame.advert_prefix(self.company)  # 02 01 06 1B FF <company LE>
        self.allowed = frame.type_mask(frame.TO_BADGE)  # group colour and command
        self.foreign = 0  # adverts dropped by the prefix check
        self.rejected = 0  # frames that failed verification

    def set_group_key(self, group_id, key16):
        if group_id != self.group_id or bytes(key16) != self.group_key:
            self.last[1] = -1  # a new group key starts its own counter space
        self.group_id = group_id
        self.group_key = bytes(key16)

    def seal(self, ftype, ctr, record):
        return frame.seal(self.key, ftype, self.dev_id, ctr, record, frame.TO_HUB)

    def advert(self, frame24):
        return frame.advert(frame24, self.company)

    def accept(self, data):
        """True if `data` is an authentic, fresh hub-to-badge frame (24 bytes) or advert (31 bytes); its type and
        13-byte plaintext are then in self.ftype and self.record."""
        data = frame.unwrap(data, self.prefix)
        if data is None:
            self.foreign += 1
            return False
        if frame.check_header(data, self.allowed) is not None:
            self.rejected += 1
            return False
        ftype = data[0] & 0x0F
        slot = 1 if ftype == frame.GROUP_COLOUR else 0
        key = self.group_key if slot else self.key
        want = self.group_id if slot else self.dev_id
        dev = data[1] | (data[2] << 8)
        ctr = u32(data, 3)
        if key is None or dev != want or ctr <= self.last[slot]:
            self.rejected += 1
            return False
        rec = frame.open_frame(key, data, frame.TO_BADGE)
        if rec is None:
            self.rejected += 1
            return False
        self.last[slot] = ctr
        self.ftype = ftype
        self.record = rec
        return True

    def group_key_part(self, rec):
        """CMD_GROUP_KEY: part (0|1), group id u16 LE, 8 key bytes. Installs the key once both parts arrived."""
        part = rec[1]
        gid = rec[2] | (rec[3] << 8)
        if part > 1:
            return False
        parts = self._key_parts
        if parts[2] != gid:
            parts[0] = parts[1] = None
            parts[2] = gid
        parts[part] = bytes(rec[4:12])
        if parts[0] is not None and parts[1] is not None:
            self.set_group_key(gid, parts[0] + parts[1])
            parts[0] = parts[1] = None
            parts[2] = -1
            return True
        return False


def scan_prefix(company):
    """The first 8 bytes of every group-colour advert for this badge (the esp32 HAL's scan filter in IRQ context):
    the advert envelope of `company` and the header byte of a sealed v1 group-colour frame."""
    return frame.advert_prefix(company) + bytes((frame.header_byte(frame.GROUP_COLOUR),))


def u32(rec, off):
    return rec[off] | (rec[off + 1] << 8) | (rec[off + 2] << 16) | (rec[off + 3] << 24)
