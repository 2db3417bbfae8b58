//! English and French texts. The language is remembered in localStorage.

use crate::card::Band;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

const STORAGE_KEY: &str = "pneumoscope.lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code.get(..2)?.to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The remembered choice, else the browser's language, else English.
    pub fn initial() -> Self {
        let window = web_sys::window();
        let stored = window
            .as_ref()
            .and_then(|w| w.local_storage().ok().flatten())
            .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten());
        stored
            .as_deref()
            .and_then(Lang::from_code)
            .or_else(|| {
                window
                    .and_then(|w| w.navigator().language())
                    .as_deref()
                    .and_then(Lang::from_code)
            })
            .unwrap_or(Lang::En)
    }

    pub fn remember(self) {
        if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let _ = storage.set_item(STORAGE_KEY, self.code());
        }
        if let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = root.set_attribute("lang", self.code());
        }
    }
}

macro_rules! texts {
    ($($key:ident => $en:expr, $fr:expr;)*) => {
        /// Every fixed text of the interface.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum T { $($key),* }

        impl T {
            pub fn get(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((T::$key, Lang::En) => $en, (T::$key, Lang::Fr) => $fr,)*
                }
            }
        }
    };
}

texts! {
    Title => "Pneumoscope", "Pneumoscope";
    Tagline => "Private chest X-ray pneumonia screening. The model runs on this computer; your images never leave it.",
               "Dépistage privé de pneumonie sur radiographie thoracique. Le modèle tourne sur cet ordinateur ; vos images n'en sortent jamais.";
    Disclaimer => "Educational aid only — not a diagnosis. This model can be wrong. Every result must be reviewed by a qualified clinician together with the patient's history and examination.",
                  "Aide pédagogique uniquement — pas un diagnostic. Ce modèle peut se tromper. Tout résultat doit être revu par un clinicien qualifié, avec l'histoire et l'examen du patient.";
    Language => "Language", "Langue";
    ForceCpu => "Force CPU", "Forcer le CPU";
    CpuUnavailable => "CPU (WebGPU unavailable)", "CPU (WebGPU indisponible)";
    CpuForced => "CPU (chosen by user)", "CPU (choisi par l'utilisateur)";
    CpuAfterLoss => "CPU (GPU device lost)", "CPU (GPU perdu)";
    StartingBackend => "Looking for a GPU…", "Recherche d'un GPU…";
    LoadingCard => "Reading the model card…", "Lecture de la fiche du modèle…";
    Downloading => "Downloading model weights", "Téléchargement des poids du modèle";
    Verifying => "Verifying the weights (sha256), loading and warming up the model…", "Vérification des poids (sha256), chargement et préchauffage du modèle…";
    Ready => "Model ready. Drop chest X-rays below.", "Modèle prêt. Déposez des radiographies thoraciques ci-dessous.";
    Retry => "Try again", "Réessayer";
    DropHere => "Drop chest X-rays here (PNG, JPEG or DICOM), paste one, or", "Déposez des radiographies ici (PNG, JPEG ou DICOM), collez-en une, ou";
    ChooseFiles => "choose files", "choisissez des fichiers";
    ChooseFolder => "choose a folder", "choisissez un dossier";
    DropHint => "One image opens the detailed view; several open the triage table.", "Une image ouvre la vue détaillée ; plusieurs ouvrent le tableau de tri.";
    WaitModel => "The model is still loading; the images will be analysed as soon as it is ready.", "Le modèle est en cours de chargement ; les images seront analysées dès qu'il sera prêt.";
    Analysing => "Analysing", "Analyse de";
    Probability => "Probability of pneumonia", "Probabilité de pneumonie";
    Predicted => "Predicted class (threshold", "Classe prédite (seuil";
    Interpretation => "Interpretation", "Interprétation";
    BandStrong => "Strong signal for pneumonia: findings are likely; correlate clinically and review the image.",
                  "Signal fort de pneumonie : anomalies probables ; corréler à la clinique et relire l'image.";
    BandModerate => "Moderate signal for pneumonia: consider pneumonia; clinical review recommended.",
                    "Signal modéré de pneumonie : envisager une pneumonie ; revue clinique recommandée.";
    BandGrey => "Grey zone: the model is uncertain; do not rely on it, read the image yourself.",
                "Zone grise : le modèle est incertain ; ne pas s'y fier, lire l'image vous-même.";
    BandBorderline => "Borderline: weak signal, slightly above the negative zone; interpret with caution.",
                      "Limite : signal faible, juste au-dessus de la zone négative ; interpréter avec prudence.";
    BandNegative => "Leans NORMAL: little signal for pneumonia; this does not exclude disease.",
                    "Plutôt NORMAL : peu de signal de pneumonie ; cela n'exclut pas une maladie.";
    Gauge => "Confidence gauge", "Jauge de confiance";
    Timings => "Time", "Temps";
    Decode => "decoding", "décodage";
    Inference => "inference", "inférence";
    GradCam => "Grad-CAM", "Grad-CAM";
    Heatmap => "Grad-CAM heatmap", "Carte de chaleur Grad-CAM";
    Opacity => "Heatmap opacity", "Opacité de la carte";
    SideBySide => "Side by side", "Côte à côte";
    DownloadPng => "Download overlay (PNG)", "Télécharger la superposition (PNG)";
    LegendHigh => "red = very important", "rouge = très important";
    LegendMid => "yellow = moderate", "jaune = modéré";
    LegendLow => "blue = ignored", "bleu = ignoré";
    Original => "Original X-ray", "Radiographie d'origine";
    Batch => "Triage table", "Tableau de tri";
    BatchProgress => "Analysed", "Analysées";
    Cancel => "Cancel", "Annuler";
    Cancelled => "Cancelled", "Annulé";
    CsvExport => "Export CSV", "Exporter en CSV";
    Thumbnail => "Image", "Image";
    File => "File", "Fichier";
    Class => "Class", "Classe";
    Band => "Band", "Zone";
    SortHint => "Click a row to open its detailed view.", "Cliquez sur une ligne pour ouvrir sa vue détaillée.";
    ShortStrong => "strong", "fort";
    ShortModerate => "moderate", "modéré";
    ShortGrey => "grey zone", "zone grise";
    ShortBorderline => "borderline", "limite";
    ShortNegative => "leans normal", "plutôt normal";
    HelpTitle => "How to read Grad-CAM", "Comment lire Grad-CAM";
    Help1 => "The heatmap shows which regions most influenced the model's score. It is not a lesion outline and not a segmentation.",
             "La carte montre les régions qui ont le plus influencé le score du modèle. Ce n'est ni un contour de lésion ni une segmentation.";
    Help2 => "Trust a result more when the heat sits inside the lung fields, over the opacity you can see yourself.",
             "Faites davantage confiance à un résultat quand la chaleur se situe dans les champs pulmonaires, sur l'opacité que vous voyez vous-même.";
    Help3 => "Be suspicious when the heat sits on image borders, ribs, the diaphragm, tubes, or text markers and labels: the model may be using shortcuts.",
             "Méfiez-vous quand la chaleur se situe sur les bords de l'image, les côtes, le diaphragme, des sondes ou des marqueurs et textes : le modèle utilise peut-être des raccourcis.";
    Help4 => "A cold map does not mean a normal X-ray; a hot map does not mean pneumonia.",
             "Une carte froide ne signifie pas une radiographie normale ; une carte chaude ne signifie pas une pneumonie.";
    CardTitle => "Model card", "Fiche du modèle";
    Architecture => "Architecture", "Architecture";
    InputSize => "Input size", "Taille d'entrée";
    TrainingData => "Training data", "Données d'entraînement";
    Recipe => "Training recipe", "Recette d'entraînement";
    TestMetrics => "Measured test metrics", "Métriques mesurées sur le test";
    NoMetrics => "No measured metrics in this card.", "Aucune métrique mesurée dans cette fiche.";
    Images => "images", "images";
    Accuracy => "accuracy", "exactitude";
    Sensitivity => "sensitivity", "sensibilité";
    Specificity => "specificity", "spécificité";
    Precision => "precision", "précision";
    F1 => "F1", "F1";
    RocAuc => "ROC AUC", "ROC AUC";
    Threshold => "Decision threshold", "Seuil de décision";
    Calibration => "Calibration", "Calibration";
    Uncalibrated => "none: the model's raw probability is shown", "aucune : la probabilité brute du modèle est affichée";
    WeightsVersion => "Weights version", "Version des poids";
    WeightsHash => "Weights sha256", "sha256 des poids";
    NotStated => "not stated", "non indiqué";
    Privacy => "Privacy: images are read by this page only. No request carries image data, and the page's security policy forbids connections to any other site.",
               "Confidentialité : les images ne sont lues que par cette page. Aucune requête ne transporte d'image, et la politique de sécurité de la page interdit toute connexion à un autre site.";
    Dismiss => "Dismiss", "Fermer";
    OodRefused => "This does not look like a chest X-ray the model was trained on.",
                  "Cette image ne ressemble pas aux radiographies thoraciques sur lesquelles le modèle a été entraîné.";
    OodExplain => "The model learned from frontal pediatric chest radiographs only. On anything else its score means nothing, so no result is shown.",
                  "Le modèle n'a appris que sur des radiographies thoraciques pédiatriques de face. Sur toute autre image son score ne veut rien dire : aucun résultat n'est affiché.";
    OodDistance => "Distance from the training X-rays", "Distance aux radiographies d'entraînement";
    OodLimit => "refusal threshold", "seuil de refus";
    OodUniform => "The image is uniform: it has no detail at all.", "L'image est uniforme : elle n'a aucun détail.";
    ShowAnyway => "Show the result anyway", "Afficher le résultat quand même";
    ShownAnyway => "Shown at your request: this image does not look like a chest X-ray the model was trained on, so this result means little.",
                   "Affiché à votre demande : cette image ne ressemble pas aux radiographies sur lesquelles le modèle a été entraîné ; ce résultat a peu de sens.";
    LooksInverted => "It looks like an inverted X-ray (a negative). Invert it and analyse again?",
                     "Elle ressemble à une radiographie inversée (un négatif). L'inverser et l'analyser à nouveau ?";
    LooksRotated => "It looks like a rotated X-ray. Rotate it and analyse again?",
                    "Elle ressemble à une radiographie tournée. La tourner et l'analyser à nouveau ?";
    Invert => "Invert", "Inverser";
    Rotate => "Rotate", "Tourner";
    FixApplied => "Analysed after", "Analysée après";
    OodPassed => "Out-of-distribution check: looks like the training X-rays", "Contrôle hors distribution : ressemble aux radiographies d'entraînement";
    OodUnavailable => "Out-of-distribution check unavailable for these weights: any image gets a score, even one that is not a chest X-ray.",
                      "Contrôle hors distribution indisponible pour ces poids : toute image reçoit un score, même si ce n'est pas une radiographie thoracique.";
    OodShort => "not like the training X-rays", "différente des radiographies d'entraînement";
    OodRefusedShort => "refused", "refusée";
    OodCard => "Out-of-distribution check", "Contrôle hors distribution";
    DicomTitle => "DICOM header", "En-tête DICOM";
    Modality => "Modality", "Modalité";
    ViewPosition => "View position", "Incidence";
    BodyPart => "Body part", "Région anatomique";
    StudyDate => "Study date", "Date de l'examen";
    Frames => "Frames", "Images (frames)";
    TransferSyntax => "Transfer syntax", "Syntaxe de transfert";
    DicomPrivacy => "Patient identifiers in the file are not read or shown.", "Les identifiants du patient présents dans le fichier ne sont ni lus ni affichés.";
}

/// A band's sentence (the result view).
pub fn band_text(band: Band) -> T {
    match band {
        Band::Strong => T::BandStrong,
        Band::Moderate => T::BandModerate,
        Band::GreyZone => T::BandGrey,
        Band::Borderline => T::BandBorderline,
        Band::LeansNegative => T::BandNegative,
    }
}

/// A band in a word or two (the triage table).
pub fn band_short(band: Band) -> T {
    match band {
        Band::Strong => T::ShortStrong,
        Band::Moderate => T::ShortModerate,
        Band::GreyZone => T::ShortGrey,
        Band::Borderline => T::ShortBorderline,
        Band::LeansNegative => T::ShortNegative,
    }
}
