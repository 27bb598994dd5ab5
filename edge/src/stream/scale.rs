//! Scaling a stored cover down for the Subsonic API's `getCoverArt?size=` (issue 18):
//! decode whatever the store holds (JPEG, PNG or WebP), fit it in `fit`×`fit` with the
//! aspect kept, encode a JPEG. CPU work: call it from `spawn_blocking`.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits};

/// JPEG quality of a scaled cover: no visible loss at thumbnail sizes, a fraction of PNG's bytes.
const JPEG_QUALITY: u8 = 85;

/// The largest picture (either side) we agree to decode; stored covers are 512 px.
const MAX_DECODED_SIDE: u32 = 8192;

/// The picture as a JPEG that fits in `fit`×`fit`, or `None` when it already fits (it is
/// then served as stored: never enlarged, never re-encoded for nothing).
pub(crate) fn fit_jpeg(bytes: &[u8], fit: u32) -> Result<Option<Vec<u8>>, image::ImageError> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    reader.limits(limits);
    let picture = reader.decode()?;
    if picture.width() <= fit && picture.height() <= fit {
        return Ok(None);
    }
    // `resize` keeps the aspect ratio within the bounds; JPEG has no alpha, hence RGB.
    let scaled =
        DynamicImage::ImageRgb8(picture.resize(fit, fit, FilterType::CatmullRom).to_rgb8());
    let mut out = Vec::new();
    scaled.write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY))?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use image::{ImageFormat, RgbaImage};

    use super::*;

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let picture = DynamicImage::ImageRgba8(RgbaImage::from_pixel(
            width,
            height,
            image::Rgba([200, 10, 10, 255]),
        ));
        let picture = match format {
            ImageFormat::Jpeg => DynamicImage::ImageRgb8(picture.to_rgb8()),
            _ => picture,
        };
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn dimensions(jpeg: &[u8]) -> (u32, u32) {
        let picture = image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).unwrap();
        (picture.width(), picture.height())
    }

    #[test]
    fn a_larger_picture_fits_with_its_aspect_kept() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP] {
            let scaled = fit_jpeg(&encoded(400, 200, format), 100).unwrap().unwrap();
            assert_eq!(dimensions(&scaled), (100, 50), "{format:?}");
        }
        let tall = fit_jpeg(&encoded(60, 300, ImageFormat::Png), 30)
            .unwrap()
            .unwrap();
        assert_eq!(dimensions(&tall), (6, 30));
    }

    #[test]
    fn a_picture_that_fits_is_left_alone() {
        assert_eq!(
            fit_jpeg(&encoded(64, 48, ImageFormat::Jpeg), 64).unwrap(),
            None
        );
        assert_eq!(
            fit_jpeg(&encoded(20, 20, ImageFormat::Png), 300).unwrap(),
            None
        );
    }

    #[test]
    fn bytes_that_are_no_picture_are_an_error() {
        assert!(fit_jpeg(b"not a picture at all", 32).is_err());
        let mut cut = encoded(400, 200, ImageFormat::Png);
        cut.truncate(cut.len() / 2);
        assert!(fit_jpeg(&cut, 32).is_err());
    }
}
