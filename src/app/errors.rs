//! Everything that can go wrong, as data, so that each message is translated when shown.

use super::i18n::Lang;
use crate::decode::DecodeError;
use crate::predict::PredictError;
use crate::weights::WeightsError;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum UiError {
    /// The file's bytes are not an image the app can use.
    Decode(DecodeError),
    FileRead(String),
    Readback(String),
    CardFetch(String),
    CardInvalid(String),
    WeightsFetch(String),
    WeightsHash {
        found: String,
        expected: String,
    },
    Weights(String),
    OodFetch(String),
    Ood(String),
    DeviceLost(String),
    NoImages,
    /// The analysis worker could not be started (e.g. the browser has no module workers).
    WorkerStart(String),
    /// The analysis worker ended while it worked on this file (a crash, out of memory).
    WorkerEnded(String),
}

impl From<DecodeError> for UiError {
    fn from(e: DecodeError) -> Self {
        UiError::Decode(e)
    }
}

impl From<PredictError> for UiError {
    fn from(e: PredictError) -> Self {
        match e {
            PredictError::Decode(e) => e.into(),
            PredictError::Readback(why) => UiError::Readback(why),
        }
    }
}

impl From<crate::ood::OodError> for UiError {
    fn from(e: crate::ood::OodError) -> Self {
        UiError::Ood(e.to_string())
    }
}

impl From<WeightsError> for UiError {
    fn from(e: WeightsError) -> Self {
        match e {
            WeightsError::Hash { found, expected } => UiError::WeightsHash { found, expected },
            other => UiError::Weights(other.to_string()),
        }
    }
}

impl UiError {
    /// Errors about one image: the app is fine, only that file could not be used.
    pub fn message(&self, lang: Lang) -> String {
        let fr = lang == Lang::Fr;
        match self {
            UiError::Decode(e) => decode_message(e, fr),
            UiError::FileRead(why) => {
                if fr {
                    format!("Impossible de lire le fichier ({why}).")
                } else {
                    format!("The file could not be read ({why}).")
                }
            }
            UiError::Readback(why) => {
                if fr {
                    format!(
                        "La lecture du résultat sur le GPU a échoué ({why}). Passage au CPU ; réessayez l'image."
                    )
                } else {
                    format!(
                        "Reading the result from the GPU failed ({why}). Switching to the CPU; try the image again."
                    )
                }
            }
            UiError::CardFetch(why) => {
                if fr {
                    format!(
                        "Impossible de télécharger la fiche du modèle (weights/model-card.json) : {why}. Vérifiez la connexion puis réessayez."
                    )
                } else {
                    format!(
                        "The model card (weights/model-card.json) could not be downloaded: {why}. Check the connection and try again."
                    )
                }
            }
            UiError::CardInvalid(why) => {
                if fr {
                    format!("La fiche du modèle est invalide : {why}.")
                } else {
                    format!("The model card is invalid: {why}.")
                }
            }
            UiError::WeightsFetch(why) => {
                if fr {
                    format!(
                        "Le téléchargement des poids du modèle a échoué : {why}. Vérifiez la connexion puis réessayez."
                    )
                } else {
                    format!(
                        "Downloading the model weights failed: {why}. Check the connection and try again."
                    )
                }
            }
            UiError::WeightsHash { found, expected } => {
                if fr {
                    format!(
                        "Les poids téléchargés ne correspondent pas à la fiche du modèle (sha256 {found}, attendu {expected}). Le fichier est corrompu ou a été modifié ; il n'a pas été utilisé."
                    )
                } else {
                    format!(
                        "The downloaded weights do not match the model card (sha256 {found}, expected {expected}). The file is corrupted or was altered; it was not used."
                    )
                }
            }
            UiError::OodFetch(why) => {
                if fr {
                    format!(
                        "Le téléchargement des statistiques hors distribution du modèle a échoué : {why}. Vérifiez la connexion puis réessayez."
                    )
                } else {
                    format!(
                        "Downloading the model's out-of-distribution statistics failed: {why}. Check the connection and try again."
                    )
                }
            }
            UiError::Ood(why) => {
                if fr {
                    format!(
                        "Les statistiques hors distribution du modèle n'ont pas pu être chargées : {why}."
                    )
                } else {
                    format!(
                        "The model's out-of-distribution statistics could not be loaded: {why}."
                    )
                }
            }
            UiError::Weights(why) => {
                if fr {
                    format!("Les poids du modèle n'ont pas pu être chargés : {why}.")
                } else {
                    format!("The model weights could not be loaded: {why}.")
                }
            }
            UiError::DeviceLost(why) => {
                if fr {
                    format!("Le GPU a été perdu ({why}). L'application continue sur le CPU.")
                } else {
                    format!("The GPU device was lost ({why}). The app carries on with the CPU.")
                }
            }
            UiError::NoImages => pick(
                fr,
                "No PNG, JPEG or DICOM images were found in what was dropped.",
                "Aucune image PNG, JPEG ou DICOM n'a été trouvée dans ce qui a été déposé.",
            ),
            UiError::WorkerStart(why) => {
                if fr {
                    format!("L'analyse n'a pas pu démarrer dans ce navigateur ({why}).")
                } else {
                    format!("The analysis could not start in this browser ({why}).")
                }
            }
            UiError::WorkerEnded(why) => {
                if fr {
                    format!(
                        "Ce fichier n'a pas pu être analysé : l'analyse s'est arrêtée deux fois sur lui ({why}). Elle redémarre ; les autres fichiers continuent."
                    )
                } else {
                    format!(
                        "This file could not be analysed: the analysis stopped twice on it ({why}). It is restarting; the other files go on."
                    )
                }
            }
        }
    }
}

fn pick(fr: bool, en: &str, fr_text: &str) -> String {
    if fr {
        fr_text.to_string()
    } else {
        en.to_string()
    }
}

/// What the user reads when a file's bytes cannot be used.
fn decode_message(e: &DecodeError, fr: bool) -> String {
    match e {
        DecodeError::Empty => pick(
            fr,
            "The file is empty (0 bytes).",
            "Le fichier est vide (0 octet).",
        ),
        DecodeError::NotAnImage => pick(
            fr,
            "This file is not an image the app can read. Use a PNG, JPEG or DICOM X-ray.",
            "Ce fichier n'est pas une image lisible. Utilisez une radiographie PNG, JPEG ou DICOM.",
        ),
        DecodeError::Unsupported(f) => {
            if fr {
                format!("Les images {f} ne sont pas prises en charge. Utilisez PNG, JPEG ou DICOM.")
            } else {
                format!("{f} images are not supported. Use PNG, JPEG or DICOM.")
            }
        }
        DecodeError::FileTooLarge { megabytes } => {
            if fr {
                format!("Le fichier fait {megabytes:.0} Mo ; la limite est de 256 Mo.")
            } else {
                format!("The file is {megabytes:.0} MB; the limit is 256 MB.")
            }
        }
        DecodeError::Archive => pick(
            fr,
            "This is a zip archive, not an image. Unpack it and open the X-ray files it contains (PNG, JPEG or DICOM).",
            "Ceci est une archive zip, pas une image. Décompressez-la puis ouvrez les radiographies qu'elle contient (PNG, JPEG ou DICOM).",
        ),
        DecodeError::NoPixels { width, height } => {
            if fr {
                format!("L'image n'a aucun pixel ({width}×{height}).")
            } else {
                format!("The image has no pixels ({width}×{height}).")
            }
        }
        DecodeError::TooLarge {
            width,
            height,
            megapixels,
        } => {
            if fr {
                format!(
                    "L'image fait {width}×{height} ({megapixels:.0} mégapixels) ; la limite est de 50 mégapixels. Réduisez-la puis réessayez."
                )
            } else {
                format!(
                    "The image is {width}×{height} ({megapixels:.0} megapixels); the limit is 50 megapixels. Downscale it and try again."
                )
            }
        }
        DecodeError::Corrupt(why) => {
            if fr {
                format!("Le fichier image est endommagé ou tronqué ({why}).")
            } else {
                format!("The image file is damaged or truncated ({why}).")
            }
        }
        DecodeError::JpegUnsupported(coding) => {
            if fr {
                format!(
                    "L'image est compressée en {coding}, que l'application ne sait pas décoder. Enregistrez-la en JPEG 8 bits ou en PNG puis réessayez."
                )
            } else {
                format!(
                    "The image is compressed as {coding}, which the app cannot decode. Save it as an 8-bit JPEG or as PNG and try again."
                )
            }
        }
        DecodeError::DicomTransferSyntax { name, uid } => {
            if fr {
                format!(
                    "Les pixels de ce fichier DICOM sont compressés en {name} ({uid}), que l'application ne sait pas décoder. Formats pris en charge : non compressé, RLE Lossless, JPEG baseline/étendu 8 bits, JPEG sans perte. Exportez l'image dans l'un d'eux (ou en PNG) puis réessayez."
                )
            } else {
                format!(
                    "This DICOM file's pixels are compressed as {name} ({uid}), which the app cannot decode. Supported: uncompressed, RLE Lossless, 8-bit JPEG baseline/extended, JPEG lossless. Export the image in one of these (or as PNG) and try again."
                )
            }
        }
        // The detail comes from the decoder in English; the sentence around it is translated.
        DecodeError::DicomUnsupported(why) => {
            if fr {
                format!("Ce fichier DICOM ne peut pas être analysé ({why}).")
            } else {
                format!("This DICOM file cannot be analysed ({why}).")
            }
        }
        DecodeError::DicomCorrupt(why) => {
            if fr {
                format!("Le fichier DICOM est endommagé ou tronqué ({why}).")
            } else {
                format!("The DICOM file is damaged or truncated ({why}).")
            }
        }
    }
}
