//! What text users may store: the one rule names, titles, descriptions, questions and options
//! share about characters.

/// Whether `c` may not be stored in user-given text: a control character (the caller decides
/// which layout ones it allows), or one of Unicode's 66 noncharacters (U+FDD0–U+FDEF and the
/// last two code points of every plane), which are not for interchange — SQS carries neither
/// U+FFFE nor U+FFFF in a message, and names and titles travel in the email jobs.
pub fn is_refused(c: char) -> bool {
    let code = u32::from(c);
    c.is_control() || (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_noncharacters_and_the_controls_are_refused_and_nothing_else() {
        let refused: Vec<u32> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|&c| is_refused(c) && !c.is_control())
            .map(u32::from)
            .collect();
        assert_eq!(refused.len(), 66);
        assert!(refused.contains(&0xFFFF) && refused.contains(&0x10FFFE));
        assert!(!is_refused('\u{FFFD}') && !is_refused('é') && !is_refused('\u{1F600}'));
        assert!(is_refused('\u{0}') && is_refused('\u{7F}') && is_refused('\u{9F}'));
    }
}
