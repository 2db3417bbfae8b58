//! Every element of a DICOM file must fit in the file: dicom-rs allocates an element's declared
//! length before reading it, so a 50 kB file declaring a 4 GB Pixel Data element took 11 s and
//! 4.3 GB (and would abort the browser tab). This walks the element headers of the file meta
//! group and of the data set and refuses a length that runs past the end, before dicom-rs
//! reads anything.
//!
//! The walk descends into sequences and their items (their contents are elements too) and skips
//! encapsulated pixel data fragments, so nested lengths are checked as well, following where
//! dicom-rs expects an item header and where an element header. It reads each
//! element's VR as dicom-rs does (the dictionary's for implicit VR), because dicom-rs reads a
//! binary value as `length / size` numbers and leaves the rest unread: a 2-byte UL once shifted
//! every later header by two bytes, and a piece of the Pixel Data header became a 4 GB length.

use dicom_core::VR;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;

/// Tags `(group, element)` of the item and delimitation markers (PS3.5 §7.5).
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_DELIMITER: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: (u16, u16) = (0xFFFE, 0xE0DD);
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// The most element headers one walk reads. A radiograph has a few hundred (a multi-frame file
/// a few per frame); 44 kB of deflated zeros once inflated to nine million empty elements, which
/// took dicom-rs over a second to read and refuse, and a million (the first limit) still took it
/// over 5 s under the fuzzer's sanitizer (0.1–0.4 s natively).
const MAX_ELEMENTS: usize = 1 << 16;

/// How the elements are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    pub explicit_vr: bool,
    pub big_endian: bool,
}

impl Encoding {
    /// The file meta group's: explicit VR little endian, always.
    pub const META: Self = Self {
        explicit_vr: true,
        big_endian: false,
    };

    fn u16_at(self, bytes: &[u8], at: usize) -> u16 {
        let b = [bytes[at], bytes[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(self, bytes: &[u8], at: usize) -> u32 {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
}

/// Whether an explicit VR has a 2-byte reserved field and a 4-byte length (PS3.5 §7.1.2): all
/// but the short ones. An unknown VR is read as UN (long) by dicom-rs, so here too: a damaged
/// VR once made it read four bytes of text as a 3.7 GB length.
fn long_form(vr: &[u8]) -> bool {
    const SHORT: [&[u8; 2]; 21] = [
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN",
        b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    ];
    !SHORT.iter().any(|short| short.as_slice() == vr)
}

/// The VR dicom-rs gives an element of an implicit-VR data set: OW for pixel and overlay data,
/// else the dictionary's, else UN.
fn implicit_vr(tag: (u16, u16)) -> VR {
    if tag == PIXEL_DATA || (tag.0 >> 8 == 0x60 && tag.1 == 0x3000) {
        return VR::OW;
    }
    StandardDataDictionary
        .by_tag(tag.into())
        .map_or(VR::UN, |entry| entry.vr().relaxed())
}

/// Bytes per number of the binary VRs, whose length must be a multiple of it.
fn value_size(vr: VR) -> Option<u32> {
    match vr {
        VR::US | VR::OW | VR::SS => Some(2),
        VR::AT | VR::FL | VR::OF | VR::SL | VR::UL | VR::OL => Some(4),
        VR::FD | VR::OD | VR::SV | VR::OV | VR::UV => Some(8),
        _ => None,
    }
}

/// Checks the file meta information (`bytes` starts after "DICM"): the group length, then
/// every element that starts inside it, whatever its group (dicom-rs reads them all, the last
/// one to its end even past the group), then the group-2 elements that follow if the group
/// length undercounts.
pub fn check_meta(bytes: &[u8]) -> Result<(), String> {
    let meta = Encoding::META;
    if bytes.len() >= 12 && (meta.u16_at(bytes, 0), meta.u16_at(bytes, 2)) == (0x0002, 0x0000) {
        let group_length = meta.u32_at(bytes, 8) as usize;
        if group_length > bytes.len() - 12 {
            return Err(format!(
                "group 0002 declares {group_length} bytes but only {} follow",
                bytes.len() - 12
            ));
        }
        check_meta_group(&bytes[12..], group_length)?;
    }
    check(bytes, meta, Some(0x0002))
}

/// The elements inside the meta group length, as dicom-rs' meta reader reads them: flat, each
/// a header and a value of defined length whatever its VR or group (an SQ there is not a
/// sequence; an undefined length is refused before anything is read).
fn check_meta_group(bytes: &[u8], group_length: usize) -> Result<(), String> {
    let meta = Encoding::META;
    let mut at = 0;
    while at < group_length && at + 8 <= bytes.len() {
        let tag = (meta.u16_at(bytes, at), meta.u16_at(bytes, at + 2));
        let Some((length, header, _)) = element_header(bytes, at, meta, tag) else {
            return Ok(());
        };
        if length == UNDEFINED {
            return Ok(());
        }
        at += header;
        fits(tag, length, bytes.len() - at)?;
        at += length as usize;
    }
    Ok(())
}

/// A sequence or an item the walk is in, as dicom-rs' data set reader stacks them; `end` is
/// where a defined length closes it. Items of encapsulated pixel data hold bytes.
struct Open {
    sequence: bool,
    pixel_data: bool,
    end: Option<usize>,
}

/// Checks the elements of `bytes`; with `only_group`, stops at the first element of another
/// group (the file meta information is group 2). The end of `bytes` may cut the last header:
/// that is dicom-rs' to report, as is any structure at which it stops reading (so does this).
///
/// The walk follows dicom-rs' reader state by state: where it expects an item header (right
/// after a sequence starts or an item ends) and where an element header. An item tag where an
/// element is expected is a plain element to dicom-rs, whose value it skips; descending into
/// it, as the walk once did, checked other headers than the ones dicom-rs then read.
pub fn check(bytes: &[u8], encoding: Encoding, only_group: Option<u16>) -> Result<(), String> {
    let mut at = 0;
    let mut open: Vec<Open> = Vec::new();
    let mut expect_item = false;
    let mut elements = 0;
    loop {
        // A defined length that ends here closes its sequence (back to elements) or its item
        // (back to item headers); one already passed stops dicom-rs.
        while let Some(top) = open.last()
            && let Some(end) = top.end
        {
            match end.cmp(&at) {
                std::cmp::Ordering::Equal => {
                    expect_item = !top.sequence;
                    open.pop();
                }
                std::cmp::Ordering::Less => return Ok(()),
                std::cmp::Ordering::Greater => break,
            }
        }
        if at + 8 > bytes.len() {
            return Ok(());
        }
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(format!(
                "more than {MAX_ELEMENTS} elements (a radiograph has a few hundred)"
            ));
        }
        let tag = (encoding.u16_at(bytes, at), encoding.u16_at(bytes, at + 2));
        if only_group.is_some_and(|g| g != tag.0) {
            return Ok(());
        }
        if expect_item {
            let length = encoding.u32_at(bytes, at + 4);
            at += 8;
            match tag {
                ITEM => {
                    // An item outside any sequence, or a fragment of undefined length, stops dicom-rs.
                    let Some(pixel_data) = open.last().map(|o| o.pixel_data) else {
                        return Ok(());
                    };
                    if pixel_data {
                        // A fragment: bytes, then the next item.
                        if length == UNDEFINED {
                            return Ok(());
                        }
                        fits(tag, length, bytes.len() - at)?;
                        at += length as usize;
                    } else {
                        let end = container_end(tag, length, at, bytes.len())?;
                        expect_item = false;
                        open.push(Open {
                            sequence: false,
                            pixel_data: false,
                            end,
                        });
                    }
                }
                ITEM_DELIMITER => _ = open.pop(),
                SEQUENCE_DELIMITER => {
                    open.pop();
                    expect_item = false;
                }
                _ => return Ok(()),
            }
            continue;
        }
        let Some((length, header, vr)) = element_header(bytes, at, encoding, tag) else {
            return Ok(());
        };
        if let Some(size) = value_size(vr)
            && length != UNDEFINED
            && length % size != 0
        {
            return Err(format!(
                "element ({:04X},{:04X}) is {vr:?} ({size} bytes a number) but declares {length} bytes",
                tag.0, tag.1
            ));
        }
        at += header;
        if vr == VR::SQ || (tag != ITEM_DELIMITER && length == UNDEFINED) {
            // A sequence; so is any other element of undefined length, and encapsulated pixel
            // data's items are its fragments.
            let end = container_end(tag, length, at, bytes.len())?;
            expect_item = true;
            open.push(Open {
                sequence: true,
                pixel_data: tag == PIXEL_DATA && end.is_none(),
                end,
            });
            continue;
        }
        if tag == ITEM_DELIMITER {
            // Closes the item it ends; outside any, dicom-rs ignores it (and its length).
            if open.pop().is_some() {
                expect_item = true;
            }
            continue;
        }
        let remaining = bytes.len() - at;
        // A group length (gggg,0000) counts the bytes of the rest of its group.
        if tag.1 == 0 && tag.0 != 0xFFFE && length == 4 && remaining >= 4 {
            let group_length = encoding.u32_at(bytes, at);
            if group_length as usize > remaining - 4 {
                return Err(format!(
                    "group {:04X} declares {group_length} bytes but only {} follow",
                    tag.0,
                    remaining - 4
                ));
            }
        }
        fits(tag, length, remaining)?;
        at += length as usize;
    }
}

/// The value length, header size and VR of the element whose (already read) `tag` starts at
/// `at`, as dicom-rs' header decoders read them; `None` where the end of `bytes` cuts the header.
fn element_header(
    bytes: &[u8],
    at: usize,
    encoding: Encoding,
    tag: (u16, u16),
) -> Option<(u32, usize, VR)> {
    if tag.0 == 0xFFFE {
        // Items and delimiters have no VR.
        return Some((encoding.u32_at(bytes, at + 4), 8, VR::UN));
    }
    if !encoding.explicit_vr {
        return Some((encoding.u32_at(bytes, at + 4), 8, implicit_vr(tag)));
    }
    let code = [bytes[at + 4], bytes[at + 5]];
    let vr = VR::from_binary(code).unwrap_or(VR::UN);
    if !long_form(&code) {
        return Some((encoding.u16_at(bytes, at + 6) as u32, 8, vr));
    }
    (at + 12 <= bytes.len()).then(|| (encoding.u32_at(bytes, at + 8), 12, vr))
}

/// Where a sequence or item whose contents start at `at` ends: nowhere for an undefined length
/// (a delimiter closes it), else within the file's `total` bytes.
fn container_end(
    tag: (u16, u16),
    length: u32,
    at: usize,
    total: usize,
) -> Result<Option<usize>, String> {
    if length == UNDEFINED {
        return Ok(None);
    }
    fits(tag, length, total - at)?;
    Ok(Some(at + length as usize))
}

/// A value of `length` bytes must fit in the `remaining` ones: dicom-rs allocates it first.
fn fits(tag: (u16, u16), length: u32, remaining: usize) -> Result<(), String> {
    if length as usize > remaining {
        return Err(format!(
            "element ({:04X},{:04X}) declares {length} bytes but only {remaining} follow",
            tag.0, tag.1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = [tag.0.to_le_bytes(), tag.1.to_le_bytes()].concat();
        out.extend_from_slice(vr);
        if long_form(vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    const LE: Encoding = Encoding::META;

    #[test]
    fn honest_lengths_pass_and_lies_are_named() {
        let rows = element((0x0028, 0x0010), b"US", &64u16.to_le_bytes());
        let pixels = element(PIXEL_DATA, b"OB", &[7; 16]);
        let good = [rows.clone(), pixels.clone()].concat();
        assert_eq!(check(&good, LE, None), Ok(()));
        let mut lying = good.clone();
        let at = rows.len() + 8;
        lying[at..at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let err = check(&lying, LE, None).unwrap_err();
        assert!(
            err.starts_with("element (7FE0,0010) declares 4294967280 bytes"),
            "{err}"
        );
    }

    #[test]
    fn an_element_that_starts_inside_the_meta_group_is_checked_to_its_end() {
        // dicom-rs reads elements while it has read fewer bytes than the group length says,
        // so the element starting at its last bytes is read whole (found by fuzzing: 2.9 GB).
        let version = element((0x0002, 0x0001), b"OB", &[0, 1]);
        let mut lying = element((0x0002, 0x0003), b"UN", b"1.2");
        lying[8..12].copy_from_slice(&0xAE32_2E31u32.to_le_bytes());
        let group = element(
            (0x0002, 0x0000),
            b"UL",
            &(version.len() as u32 + 4).to_le_bytes(),
        );
        let meta = [group, version, lying].concat();
        let err = check_meta(&meta).unwrap_err();
        assert!(
            err.contains("(0002,0003) declares 2922524209 bytes"),
            "{err}"
        );
    }

    #[test]
    fn a_meta_element_marked_sq_is_a_plain_value() {
        // dicom-rs' meta reader reads every element as a header and a value: an SQ there opens
        // no sequence, and the elements after it are read on (found by fuzzing: 3.5 GB).
        let version = element((0x0002, 0x0001), b"SQ", &[0, 1]);
        let mut lying = [0x0002u16.to_le_bytes(), 0x0010u16.to_le_bytes()].concat();
        lying.extend_from_slice(b"U\xC0\0\0"); // no such VR: UN, reserved bytes, 4-byte length
        lying.extend_from_slice(&0xD1CD_D1CEu32.to_le_bytes());
        let group = element((0x0002, 0x0000), b"UL", &64u32.to_le_bytes());
        let meta = [group, version, lying, vec![0; 40]].concat();
        let err = check_meta(&meta).unwrap_err();
        assert!(
            err.contains("(0002,0010) declares 3519926734 bytes"),
            "{err}"
        );
    }

    #[test]
    fn binary_values_must_hold_whole_numbers() {
        // dicom-rs would read no number from a 2-byte UL and leave both bytes unread.
        let high_bit = element((0x0028, 0x0102), b"UL", &[7, 0]);
        let err = check(&high_bit, LE, None).unwrap_err();
        assert!(
            err.contains("(0028,0102) is UL (4 bytes a number)"),
            "{err}"
        );
        assert_eq!(
            check(&element((0x0028, 0x0102), b"US", &[7, 0]), LE, None),
            Ok(())
        );
        // Implicit VR: the dictionary's VR (Rows is US), and a 3-byte value.
        let implicit = Encoding {
            explicit_vr: false,
            big_endian: false,
        };
        let mut rows = [0x0028u16.to_le_bytes(), 0x0010u16.to_le_bytes()].concat();
        rows.extend_from_slice(&3u32.to_le_bytes());
        rows.extend_from_slice(&[64, 0, 0]);
        assert!(check(&rows, implicit, None).unwrap_err().contains("is US"));
    }

    #[test]
    fn a_flood_of_empty_elements_is_refused() {
        let empty = element((0x0009, 0x0010), b"UN", &[]);
        let flood = empty.repeat(MAX_ELEMENTS + 1);
        let err = check(&flood, LE, None).unwrap_err();
        assert!(err.starts_with("more than 65536 elements"), "{err}");
        assert_eq!(check(&flood[empty.len()..], LE, None), Ok(()));
    }

    #[test]
    fn an_item_outside_a_sequence_is_skipped_as_dicom_rs_skips_it() {
        // Found by the fuzz target `decode`: Pixel Data of length 0, then an item tag with a
        // 4-byte value. dicom-rs skips the value and reads the next header from the bytes after
        // it, whose length here is 3.8 GB; read as elements, the item's bytes hid that header.
        let empty = element(PIXEL_DATA, b"UN", &[]);
        let mut item = [ITEM.0.to_le_bytes(), ITEM.1.to_le_bytes()].concat();
        item.extend_from_slice(&4u32.to_le_bytes());
        item.extend_from_slice(&[0; 4]);
        let mut lie = [0x0009u16.to_le_bytes(), 0x0010u16.to_le_bytes()].concat();
        lie.extend_from_slice(b"UN\0\0");
        lie.extend_from_slice(&0xE0FF_D8FFu32.to_le_bytes());
        let file = [empty, item, lie, vec![0; 64]].concat();
        let err = check(&file, LE, None).unwrap_err();
        assert!(
            err.starts_with("element (0009,0010) declares 3774863615 bytes"),
            "{err}"
        );
    }

    #[test]
    fn nested_items_and_fragments_are_checked() {
        // A defined-length sequence holding one item with one element whose length lies.
        let inner = element((0x0008, 0x0100), b"SH", b"ABCD");
        let mut item = [ITEM.0.to_le_bytes(), ITEM.1.to_le_bytes()].concat();
        item.extend_from_slice(&(inner.len() as u32).to_le_bytes());
        item.extend_from_slice(&inner);
        let sequence = element((0x0008, 0x1110), b"SQ", &item);
        assert_eq!(check(&sequence, LE, None), Ok(()));
        let mut lying = sequence.clone();
        let at = 12 + 8 + 6; // SQ header, item header, the inner element's length
        lying[at..at + 2].copy_from_slice(&200u16.to_le_bytes());
        assert!(check(&lying, LE, None).is_err());

        // Encapsulated pixel data: fragments are skipped, their lengths checked.
        let mut pixel = [PIXEL_DATA.0.to_le_bytes(), PIXEL_DATA.1.to_le_bytes()].concat();
        pixel.extend_from_slice(b"OB\0\0");
        pixel.extend_from_slice(&UNDEFINED.to_le_bytes());
        for fragment in [&[][..], &[0xFF, 0xD8, 0xFF, 0xD9]] {
            pixel.extend_from_slice(&[ITEM.0.to_le_bytes(), ITEM.1.to_le_bytes()].concat());
            pixel.extend_from_slice(&(fragment.len() as u32).to_le_bytes());
            pixel.extend_from_slice(fragment);
        }
        let end = [
            &SEQUENCE_DELIMITER.0.to_le_bytes()[..],
            &SEQUENCE_DELIMITER.1.to_le_bytes(),
            &[0; 4],
        ]
        .concat();
        let good = [pixel.clone(), end].concat();
        assert_eq!(check(&good, LE, None), Ok(()));
        let mut cut = pixel.clone();
        let last = cut.len() - 8;
        cut[last..last + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(check(&cut, LE, None).is_err());
    }
}
