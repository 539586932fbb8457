//! split_oracle split   < texts.hex   one text per line, hex; prints its pieces as hex, joined by ','
//! split_oracle classes > classes.bin one byte per code point 0..=0x10FFFF (surrogates 0):
//!                                    1 \p{L}, 2 \p{N}, 4 \s, 8 \p{Cn} (unassigned in this crate's Unicode tables)
use std::io::{self, Read, Write};

const PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{:02x}", b)).collect()
}

fn unhex(line: &str) -> Vec<u8> {
    (0..line.len()).step_by(2).map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex")).collect()
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut out = io::BufWriter::new(io::stdout());
    match mode.as_str() {
        "split" => {
            let re = fancy_regex::Regex::new(PATTERN).expect("pattern");
            let mut input = String::new();
            io::stdin().read_to_string(&mut input).expect("stdin");
            for line in input.lines() {
                let text = String::from_utf8(unhex(line)).expect("UTF-8 text");
                let pieces: Vec<String> = re.find_iter(&text).map(|m| hex(m.expect("match").as_str().as_bytes())).collect();
                writeln!(out, "{}", pieces.join(",")).expect("stdout");
            }
        }
        "classes" => {
            let class = |p: &str| regex::Regex::new(&format!("^{}$", p)).expect("class");
            let (l, n, s, cn) = (class(r"\p{L}"), class(r"\p{N}"), class(r"\s"), class(r"\p{Cn}"));
            let mut bytes = vec![0u8; 0x110000];
            let mut buf = [0u8; 4];
            for cp in 0..0x110000u32 {
                if let Some(c) = char::from_u32(cp) {
                    let t = c.encode_utf8(&mut buf);
                    bytes[cp as usize] = (l.is_match(t) as u8) | (n.is_match(t) as u8) << 1 | (s.is_match(t) as u8) << 2
                        | (cn.is_match(t) as u8) << 3;
                }
            }
            out.write_all(&bytes).expect("stdout");
        }
        _ => {
            eprintln!("usage: split_oracle split|classes");
            std::process::exit(2);
        }
    }
}
