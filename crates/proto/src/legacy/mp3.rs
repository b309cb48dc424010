//! Framing of the article's MP3 stream: MPEG audio layer III frames found in a
//! TCP byte stream, resynchronising after garbage. (Being written.)
