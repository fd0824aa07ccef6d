"""Words the synthetic PACS writes into descriptions and BodyPartExamined, kept as data.

Every term is filed under the body part it names, so the ground truth of a generated description is
known and a BPE rule set can be checked against it. Terms mix Croatian (with inflected forms), Latin,
English and German, as in a Croatian hospital's archive.
"""

from __future__ import annotations

BODY_PARTS: tuple[str, ...] = (
    "WRIST", "FINGER", "ARM", "HAND", "ELBOW", "SKULL", "HEAD", "GITRACT", "HEEL", "ANKLE", "KNEE",
    "FOOT", "LEG", "URINARYTRACT", "CAROTID", "CSPINE", "LSPINE", "TSPINE", "SHOULDER", "CLAVICLE",
    "BREAST", "CHEST", "HIP", "PELVIS", "NECK", "ABDOMEN", "WHOLEBODY", "TEST", "EXTREMITY",
)

# Modalities the method keeps, then the ones it drops (present so the drop can be tested).
KEPT_MODALITIES: tuple[str, ...] = ("CT", "MR", "CR", "XA", "RF")
DROPPED_MODALITIES: tuple[str, ...] = ("NM", "US")

# Relative frequency of each modality among exams: the paper's subset was balanced over the kept
# five; a real dump has a handful of NM and US as well.
MODALITY_WEIGHTS: dict[str, float] = {
    "CT": 0.22, "MR": 0.20, "CR": 0.24, "XA": 0.14, "RF": 0.14, "NM": 0.03, "US": 0.03,
}

# Body parts plausible for each modality, with relative frequencies.
MODALITY_BODY_PARTS: dict[str, dict[str, float]] = {
    "CR": {
        "CHEST": 0.24, "HAND": 0.07, "WRIST": 0.06, "FINGER": 0.03, "KNEE": 0.07, "ANKLE": 0.05,
        "FOOT": 0.05, "HEEL": 0.02, "SHOULDER": 0.05, "ELBOW": 0.03, "ARM": 0.03, "LEG": 0.03,
        "HIP": 0.05, "PELVIS": 0.04, "CSPINE": 0.04, "LSPINE": 0.05, "TSPINE": 0.02, "SKULL": 0.03,
        "CLAVICLE": 0.02, "ABDOMEN": 0.02, "EXTREMITY": 0.01, "TEST": 0.005,
    },
    "CT": {
        "HEAD": 0.26, "CHEST": 0.18, "ABDOMEN": 0.16, "PELVIS": 0.06, "CSPINE": 0.05, "LSPINE": 0.05,
        "TSPINE": 0.02, "NECK": 0.04, "SKULL": 0.03, "URINARYTRACT": 0.03, "WHOLEBODY": 0.03,
        "CAROTID": 0.02, "KNEE": 0.02, "ANKLE": 0.015, "HIP": 0.015, "SHOULDER": 0.01, "TEST": 0.005,
    },
    "MR": {
        "HEAD": 0.30, "KNEE": 0.12, "LSPINE": 0.11, "CSPINE": 0.08, "TSPINE": 0.03, "SHOULDER": 0.06,
        "ABDOMEN": 0.06, "PELVIS": 0.05, "BREAST": 0.04, "ANKLE": 0.03, "HIP": 0.03, "NECK": 0.02,
        "WRIST": 0.02, "ELBOW": 0.01, "FOOT": 0.01, "EXTREMITY": 0.01, "TEST": 0.005,
    },
    "XA": {
        "CHEST": 0.45, "CAROTID": 0.14, "HEAD": 0.12, "LEG": 0.12, "ABDOMEN": 0.08, "PELVIS": 0.04,
        "ARM": 0.02, "EXTREMITY": 0.02,
    },
    "RF": {
        "GITRACT": 0.45, "URINARYTRACT": 0.2, "ABDOMEN": 0.1, "CHEST": 0.08, "PELVIS": 0.05,
        "LSPINE": 0.04, "HIP": 0.04, "KNEE": 0.02,
    },
    "NM": {"WHOLEBODY": 0.5, "CHEST": 0.2, "NECK": 0.15, "ABDOMEN": 0.15},
    "US": {"ABDOMEN": 0.4, "NECK": 0.2, "BREAST": 0.15, "CAROTID": 0.15, "PELVIS": 0.1},
}

# Names of each body part, per language ("hr" Croatian in several grammatical cases, "la" Latin,
# "en" English, "de" German), with the abbreviations and misspellings radiographers actually type.
BODY_PART_TERMS: dict[str, dict[str, list[str]]] = {
    "WRIST": {
        "hr": ["ručni zglob", "ručnog zgloba", "ručnom zglobu", "rucni zglob", "zapešće", "zapešća"],
        "la": ["carpus", "articulatio radiocarpalis", "radiocarpalis"],
        "en": ["wrist", "wrist joint"],
        "de": ["Handgelenk", "HG"],
    },
    "FINGER": {
        "hr": ["prst", "prsta", "prstiju", "palac", "palca", "kažiprst"],
        "la": ["digitus", "digiti", "pollex", "phalanx"],
        "en": ["finger", "fingers", "thumb"],
        "de": ["Finger", "Daumen"],
    },
    "ARM": {
        "hr": ["nadlaktica", "nadlaktice", "podlaktica", "podlaktice", "ruka", "ruke"],
        "la": ["humerus", "antebrachium", "brachium", "radius et ulna"],
        "en": ["arm", "forearm", "upper arm", "humerus"],
        "de": ["Oberarm", "Unterarm", "Arm"],
    },
    "HAND": {
        "hr": ["šaka", "šake", "šaci", "saka", "sake", "obje šake"],
        "la": ["manus", "manuum", "metacarpus"],
        "en": ["hand", "hands", "both hands"],
        "de": ["Hand", "Hände"],
    },
    "ELBOW": {
        "hr": ["lakat", "lakta", "laktu", "lakatni zglob", "lakatnog zgloba"],
        "la": ["cubitus", "articulatio cubiti", "olecranon"],
        "en": ["elbow", "elbow joint"],
        "de": ["Ellenbogen", "Ellbogen", "Ellenb."],
    },
    "SKULL": {
        "hr": ["lubanja", "lubanje", "lubanji", "paranazalni sinusi", "paranazalnih sinusa", "PNS"],
        "la": ["cranium", "cranii", "sinus paranasales", "os frontale"],
        "en": ["skull", "sinuses", "facial bones"],
        "de": ["Schädel", "Schaedel", "Nasennebenhöhlen", "NNH"],
    },
    "HEAD": {
        "hr": ["glava", "glave", "mozak", "mozga", "neurokranij", "neurokranija", "endokranij"],
        "la": ["caput", "capitis", "cerebrum", "cerebri", "encephalon"],
        "en": ["head", "brain", "head CT", "brain MRI"],
        "de": ["Kopf", "Schädel-Hirn", "Gehirn", "cCT"],
    },
    "GITRACT": {
        "hr": ["jednjak", "jednjaka", "želudac", "želuca", "pasaža", "pasaže", "irigografija",
               "crijeva", "tanko crijevo", "tankog crijeva", "gastroduodenum", "gastroduodenuma"],
        "la": ["oesophagus", "oesophagi", "ventriculus", "duodenum", "colon", "gastroduodenalis"],
        "en": ["GI tract", "upper GI", "barium swallow", "barium enema", "small bowel"],
        "de": ["Magen-Darm", "Ösophagus", "Kolon-KE", "Dünndarm"],
    },
    "HEEL": {
        "hr": ["petna kost", "petne kosti", "peta", "pete", "kalkaneus", "kalkaneusa"],
        "la": ["calcaneus", "calcanei", "os calcis"],
        "en": ["heel", "calcaneum"],
        "de": ["Ferse", "Fersenbein", "Calcaneus"],
    },
    "ANKLE": {
        "hr": ["gležanj", "gležnja", "gležnju", "glezanj", "skočni zglob", "skočnog zgloba"],
        "la": ["articulatio talocruralis", "talocruralis", "malleolus"],
        "en": ["ankle", "ankle joint"],
        "de": ["Sprunggelenk", "OSG", "oberes Sprunggelenk"],
    },
    "KNEE": {
        "hr": ["koljeno", "koljena", "koljenu", "koljenog zgloba", "koljenski zglob", "kolj."],
        "la": ["genu", "genus", "articulatio genus"],
        "en": ["knee", "knee joint"],
        "de": ["Knie", "Kniegelenk"],
    },
    "FOOT": {
        "hr": ["stopalo", "stopala", "stopalu", "obja stopala", "prsti stopala"],
        "la": ["pes", "pedis", "metatarsus"],
        "en": ["foot", "feet", "forefoot"],
        "de": ["Fuß", "Fuss", "Vorfuß"],
    },
    "LEG": {
        "hr": ["potkoljenica", "potkoljenice", "natkoljenica", "natkoljenice", "noga", "nogu",
               "donji ekstremiteti", "arterije nogu"],
        "la": ["crus", "cruris", "femur", "tibia", "fibula", "femoris"],
        "en": ["leg", "lower leg", "thigh", "femur", "lower limb run-off"],
        "de": ["Unterschenkel", "Oberschenkel", "Bein", "Beinangiographie"],
    },
    "URINARYTRACT": {
        "hr": ["mokraćni sustav", "mokraćnog sustava", "urotrakt", "urografija", "urografije",
               "cistografija", "bubrezi", "bubrega", "mokraćni mjehur"],
        "la": ["tractus urinarius", "ren", "renes", "vesica urinaria", "urogenitalis"],
        "en": ["urinary tract", "urogram", "IVU", "KUB", "cystogram", "kidneys"],
        "de": ["Harnwege", "Urogramm", "Nieren", "Harnblase"],
    },
    "CAROTID": {
        "hr": ["karotide", "karotida", "karotidne arterije", "karotidnih arterija", "vratne arterije"],
        "la": ["a. carotis", "arteria carotis", "carotis communis", "aa. carotides"],
        "en": ["carotid", "carotids", "carotid arteries", "carotid angio"],
        "de": ["Karotis", "Carotis", "Halsschlagader"],
    },
    "CSPINE": {
        "hr": ["vratna kralježnica", "vratne kralježnice", "vratnoj kralježnici", "VK", "cervikalna kralj.",
               "vratna kraljeznica"],
        "la": ["columna cervicalis", "vertebrae cervicales", "cervicalis"],
        "en": ["c-spine", "cspine", "c_spine", "C spine", "cervical spine"],
        "de": ["HWS", "Halswirbelsäule"],
    },
    "LSPINE": {
        "hr": ["lumbalna kralježnica", "lumbalne kralježnice", "LS kralježnica", "LS kralj.",
               "slabinska kralježnica", "lumbosakralna kralježnica", "LS-kraljeznica"],
        "la": ["columna lumbalis", "vertebrae lumbales", "lumbosacralis", "lumbalis"],
        "en": ["l-spine", "lspine", "l_spine", "L spine", "lumbar spine"],
        "de": ["LWS", "Lendenwirbelsäule"],
    },
    "TSPINE": {
        "hr": ["torakalna kralježnica", "torakalne kralježnice", "prsna kralježnica", "TH kralježnica",
               "Th kralj.", "torakalna kraljeznica"],
        "la": ["columna thoracalis", "vertebrae thoracicae", "thoracalis"],
        "en": ["t-spine", "tspine", "t_spine", "thoracic spine", "dorsal spine"],
        "de": ["BWS", "Brustwirbelsäule"],
    },
    "SHOULDER": {
        "hr": ["rame", "ramena", "ramenu", "rameni zglob", "ramenog zgloba"],
        "la": ["humeroscapularis", "articulatio humeri", "omos"],
        "en": ["shoulder", "shoulder joint"],
        "de": ["Schulter", "Schultergelenk"],
    },
    "CLAVICLE": {
        "hr": ["ključna kost", "ključne kosti", "ključnu kost", "kljucna kost", "klavikula"],
        "la": ["clavicula", "claviculae"],
        "en": ["clavicle", "collarbone"],
        "de": ["Schlüsselbein", "Klavikula"],
    },
    "BREAST": {
        "hr": ["dojka", "dojke", "dojki", "obje dojke", "mamografija"],
        "la": ["mamma", "mammae", "glandula mammaria"],
        "en": ["breast", "breasts", "bilateral breast"],
        "de": ["Brust", "Mamma", "Brustdrüse"],
    },
    "CHEST": {
        "hr": ["prsni koš", "prsnog koša", "prsnom košu", "toraks", "toraksa", "torax", "pluća",
               "srce i pluća", "p/a pluća"],
        "la": ["thorax", "thoracis", "pulmo", "pulmo et cor", "cor"],
        "en": ["chest", "thorax", "lungs", "chest PA"],
        "de": ["Thorax", "Lunge", "Rö-Thorax"],
    },
    "HIP": {
        "hr": ["kuk", "kuka", "kukova", "oba kuka", "zglob kuka", "zgloba kuka"],
        "la": ["coxa", "coxae", "articulatio coxae", "collum femoris"],
        "en": ["hip", "hips", "hip joint"],
        "de": ["Hüfte", "Huefte", "Hüftgelenk"],
    },
    "PELVIS": {
        "hr": ["zdjelica", "zdjelice", "zdjelici", "mala zdjelica", "male zdjelice"],
        "la": ["pelvis", "pelvis minor", "os ilium"],
        "en": ["pelvis", "pelvic"],
        "de": ["Becken", "kleines Becken"],
    },
    "NECK": {
        "hr": ["vrat", "vrata", "meka tkiva vrata", "mekih tkiva vrata", "štitnjača", "štitnjače"],
        "la": ["collum", "colli", "glandula thyroidea"],
        "en": ["neck", "soft tissue neck", "thyroid"],
        "de": ["Hals", "Halsweichteile", "Schilddrüse"],
    },
    "ABDOMEN": {
        "hr": ["abdomen", "abdomena", "trbuh", "trbuha", "gornji abdomen", "jetra", "jetre", "abd."],
        "la": ["abdomen", "abdominis", "hepar", "cavum abdominis"],
        "en": ["abdomen", "abdominal", "upper abdomen", "liver"],
        "de": ["Abdomen", "Bauch", "Oberbauch", "Leber"],
    },
    "WHOLEBODY": {
        "hr": ["cijelo tijelo", "cijelog tijela", "politrauma", "scintigrafija skeleta", "cijeli skelet"],
        "la": ["corpus totum", "totum corpus"],
        "en": ["whole body", "wholebody", "total body", "polytrauma", "bone scan"],
        "de": ["Ganzkörper", "Ganzkoerper", "Polytrauma"],
    },
    "TEST": {
        "hr": ["test", "kontrola kvalitete", "fantom", "kalibracija"],
        "la": ["test"],
        "en": ["QA", "QC phantom", "phantom", "daily QA", "test"],
        "de": ["Konstanzprüfung", "Phantom", "Test"],
    },
    "EXTREMITY": {
        "hr": ["ekstremitet", "ekstremiteta", "ekstremiteti", "udovi", "gornji ekstremitet"],
        "la": ["extremitas", "extremitates", "membrum"],
        "en": ["extremity", "extremities", "limb"],
        "de": ["Extremität", "Extremitäten", "Gliedmaßen"],
    },
}

# Terms that only one modality uses for a body part (coronary angiography is XA of the CHEST); they
# join BODY_PART_TERMS for that modality.
MODALITY_ONLY_TERMS: dict[str, dict[str, dict[str, list[str]]]] = {
    "XA": {
        "CHEST": {
            "hr": ["koronarografija", "koronarografije", "koronarne arterije", "koronarnih arterija"],
            "la": ["arteriae coronariae", "aa. coronariae"],
            "en": ["coronary angiography", "coronaries", "coronary"],
            "de": ["Koronarangiographie", "Koronarien", "Herzkatheter"],
        },
    },
}


def terms_for(part: str, modality: str, language: str) -> list[str]:
    """Body-part terms in one language usable in a description of this modality."""
    extra = MODALITY_ONLY_TERMS.get(modality, {}).get(part, {}).get(language, [])
    return BODY_PART_TERMS[part][language] + extra * 3  # modality-specific names dominate when they exist


# Values seen in BodyPartExamined besides the canonical label: vendor spellings, truncations to the
# 16-character VR limit, other languages. Each maps back to the body part it came from.
RAW_BPE_VARIANTS: dict[str, list[str]] = {
    "WRIST": ["HANDGELENK", "CARPUS", "WRIST JOINT"],
    "FINGER": ["FINGERS", "THUMB", "DIGIT"],
    "ARM": ["FOREARM", "HUMERUS", "UPPER ARM", "OBERARM"],
    "HAND": ["HANDS", "MANUS"],
    "ELBOW": ["ELLBOGEN", "ELBOW JOINT"],
    "SKULL": ["SCHAEDEL", "SINUS", "CRANIUM"],
    "HEAD": ["BRAIN", "KOPF", "HEAD_NECK", "CAPUT"],
    "GITRACT": ["GI", "COLON", "ESOPHAGUS", "STOMACH"],
    "HEEL": ["CALCANEUS", "FERSE"],
    "ANKLE": ["SPRUNGGELENK", "OSG", "ANKLE JOINT"],
    "KNEE": ["KNIE", "GENU", "KNEE JOINT"],
    "FOOT": ["FUSS", "FEET", "PES"],
    "LEG": ["LOWER LEG", "FEMUR", "TIBIA", "LOWER_LIMB"],
    "URINARYTRACT": ["KIDNEY", "BLADDER", "URINARY TRACT"],
    "CAROTID": ["CAROTIS", "CAROTIDS"],
    "CSPINE": ["C_SPNE", "C-SPINE", "HWS", "C SPINE"],
    "LSPINE": ["L-SPINE", "LWS", "L SPINE", "LUMBAR"],
    "TSPINE": ["T-SPINE", "BWS", "TH_SPINE"],
    "SHOULDER": ["SCHULTER", "Schulter", "SHOULDER JOINT"],
    "CLAVICLE": ["CLAVICULA", "KLAVIKULA"],
    "BREAST": ["MAMMA", "BRUST"],
    "CHEST": ["THORAX", "LUNG", "HEART", "Thorax", "CHEST_LAT"],
    "HIP": ["HUEFTE", "HIPS", "COXA"],
    "PELVIS": ["BECKEN", "PELVIC"],
    "NECK": ["HALS", "THYROID", "COLLUM"],
    "ABDOMEN": ["ABD", "BAUCH", "LIVER", "ABDOMEN_PELVIS"],
    "WHOLEBODY": ["WHOLE BODY", "GANZKOERPER", "WB"],
    "TEST": ["QA", "PHANTOM"],
    "EXTREMITY": ["EXTREM", "EXTREMITAET", "LIMB"],
}

# Words that name how an exam was done, per modality and language; combined with a body part term.
MODALITY_TERMS: dict[str, dict[str, list[str]]] = {
    "CT": {
        "hr": ["CT", "MSCT", "CT nativno", "CT s kontrastom", "CT bez i s kontrastom", "CT angiografija"],
        "la": ["CT"], "en": ["CT", "CT with contrast", "CT non-contrast", "CTA"],
        "de": ["CT", "CT nativ", "CT mit KM", "Spiral-CT"],
    },
    "MR": {
        "hr": ["MR", "MRI", "MR s kontrastom", "MR nativno", "magnetska rezonancija"],
        "la": ["MR"], "en": ["MRI", "MR", "MRI w/o contrast", "MR w contrast"],
        "de": ["MRT", "MRT mit KM", "Kernspin"],
    },
    "CR": {
        "hr": ["RTG", "Rtg", "rendgen", "snimka", "RTG snimka", "RTG AP i LL"],
        "la": ["RTG"], "en": ["XR", "X-ray", "Xray", "radiograph"],
        "de": ["Rö", "Röntgen", "Roentgen"],
    },
    "XA": {
        "hr": ["angiografija", "DSA", "PTA", "intervencija", "angio"],
        "la": ["angiographia"], "en": ["angiography", "angio", "DSA", "PCI"],
        "de": ["Angiographie", "DSA", "Intervention"],
    },
    "RF": {
        "hr": ["dijaskopija", "prosvjetljavanje", "kontrastna pretraga", "pasaža", "RTG dijaskopija"],
        "la": ["fluoroscopia"], "en": ["fluoroscopy", "fluoro", "contrast study"],
        "de": ["Durchleuchtung", "DL", "Kontrastuntersuchung"],
    },
    "NM": {
        "hr": ["scintigrafija", "SPECT", "scinti"], "la": ["scintigraphia"],
        "en": ["scintigraphy", "SPECT", "NM scan"], "de": ["Szintigraphie", "SPECT"],
    },
    "US": {
        "hr": ["UZV", "ultrazvuk", "UZV dopler", "color dopler"], "la": ["sonographia"],
        "en": ["US", "ultrasound", "doppler"], "de": ["Sono", "Sonographie", "Duplex"],
    },
}

# Qualifiers appended to descriptions; they carry no body-part information.
QUALIFIERS: list[str] = [
    "", "", "", "lijevo", "desno", "l. dex.", "l. sin.", "dex", "sin", "obostrano", "AP", "PA", "AP/LL",
    "ap+lat", "2 smjera", "hitno", "kontrola", "post-op", "postop.", "nativno", "links", "rechts",
    "bds.", "left", "right", "bilateral", "follow-up", "pre-op",
]

# Series descriptions by modality: sequence and reconstruction names, body part agnostic.
SERIES_TERMS: dict[str, list[str]] = {
    "CT": ["Topogram 0.6 T20f", "Scout", "Axial 5mm", "AX 1.25 STND", "ax 3mm Br40", "Thorax 1.0 B70f",
           "Abdomen 5.0 B30f", "MPR cor", "MPR sag", "Bone 1mm", "Soft tissue", "Venous phase",
           "Arterial phase", "Dose Report"],
    "MR": ["t1_tse_sag", "t2_tse_tra", "T2 FLAIR AX", "t1_mprage_sag_iso", "DWI b1000", "ADC", "PD fs cor",
           "t2_me2d_tra", "STIR cor", "T1 SE +C", "localizer", "SWI", "TOF 3D multi-slab"],
    "CR": ["AP", "PA", "LAT", "LL", "ap", "pa", "lateral", "kosa", "oblique", "axial", "Standard"],
    "XA": ["DSA 3 F/s", "Fluoro", "Cine 15 fps", "LAO 30 CRA 20", "RAO 30 CAU 20", "Run 1", "Roadmap"],
    "RF": ["Fluoro Loop", "Spot", "DL Sequenz", "Serija 1", "Pasaža", "Exposure", "LAST IMAGE HOLD"],
    "NM": ["WB ANT", "WB POST", "SPECT recon", "Static"],
    "US": ["B-mode", "Color Doppler", "Clip", "Measurement"],
}

# Descriptions that name no body part: with BodyPartExamined missing, the true part is unknowable.
VAGUE_DESCRIPTIONS: list[str] = [
    "Kontrola", "kontrolni pregled", "Hitni prijem", "Pregled", "Konzultacija", "CT nativno",
    "MR pregled", "RTG snimka", "Snimka", "Study", "Routine", "Follow-up", "ambulanta", "OHBP",
    "Dodatne snimke", "Usporedba", "Druga mišljenje", "ZAPRIMLJENO IZVANA", "Import", "Nachuntersuchung",
]
