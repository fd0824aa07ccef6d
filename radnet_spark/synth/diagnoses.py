"""Narrative diagnoses: one radiologist's report per exam, Croatian by default, English on request.

Sentences are drawn from per-region phrase lists in which the body part appears in different
grammatical cases, with typos and abbreviations, so stemming and a minimum word frequency matter.
A share of exams get an empty or too-short text, or no row at all; a few mention a date and the
patient's id so that scrubbing can be tested.
"""

from __future__ import annotations

import re

import numpy as np

from radnet_spark.synth.tags import typo

# Region family of each body part: which phrase list its findings come from.
FAMILY: dict[str, str] = {
    "HEAD": "head", "SKULL": "skull", "CHEST": "chest", "BREAST": "breast", "NECK": "neck",
    "CAROTID": "vessel", "ABDOMEN": "abdomen", "GITRACT": "git", "URINARYTRACT": "uro", "PELVIS": "abdomen",
    "WHOLEBODY": "wholebody", "CSPINE": "spine", "TSPINE": "spine", "LSPINE": "spine", "TEST": "test",
    **{p: "bone" for p in ("WRIST", "FINGER", "ARM", "HAND", "ELBOW", "HEEL", "ANKLE", "KNEE", "FOOT", "LEG",
                           "SHOULDER", "CLAVICLE", "HIP", "EXTREMITY")},
}

# The body part in the genitive (hr) or as a noun phrase (en), for the "bone" and "spine" templates.
PART_NAME: dict[str, dict[str, list[str]]] = {
    "hr": {
        "WRIST": ["ručnog zgloba", "distalnog radijusa", "skafoidne kosti"], "FINGER": ["prsta", "falange prsta"],
        "ARM": ["podlaktice", "nadlaktice", "humerusa"], "HAND": ["šake", "metakarpalne kosti"],
        "ELBOW": ["lakta", "lakatnog zgloba", "olekranona"], "HEEL": ["petne kosti", "kalkaneusa"],
        "ANKLE": ["gležnja", "lateralnog maleola", "skočnog zgloba"], "KNEE": ["koljena", "koljenskog zgloba"],
        "FOOT": ["stopala", "metatarzalne kosti"], "LEG": ["potkoljenice", "tibije", "femura"],
        "SHOULDER": ["ramena", "humerusa", "ramenog zgloba"], "CLAVICLE": ["ključne kosti", "klavikule"],
        "HIP": ["kuka", "vrata femura"], "EXTREMITY": ["ekstremiteta"],
        "CSPINE": ["vratne kralježnice", "C5-C6", "C6-C7"], "TSPINE": ["torakalne kralježnice", "Th7", "Th12"],
        "LSPINE": ["lumbalne kralježnice", "L4-L5", "L5-S1"],
    },
    "en": {
        "WRIST": ["wrist", "distal radius", "scaphoid"], "FINGER": ["finger", "phalanx"],
        "ARM": ["forearm", "humerus"], "HAND": ["hand", "metacarpal"], "ELBOW": ["elbow", "olecranon"],
        "HEEL": ["calcaneus", "heel"], "ANKLE": ["ankle", "lateral malleolus"], "KNEE": ["knee", "knee joint"],
        "FOOT": ["foot", "metatarsal"], "LEG": ["tibia", "lower leg", "femur"], "SHOULDER": ["shoulder", "humeral head"],
        "CLAVICLE": ["clavicle"], "HIP": ["hip", "femoral neck"], "EXTREMITY": ["extremity"],
        "CSPINE": ["cervical spine", "C5-C6", "C6-C7"], "TSPINE": ["thoracic spine", "T7", "T12"],
        "LSPINE": ["lumbar spine", "L4-L5", "L5-S1"],
    },
}

# Phrases per language and family: "normal" findings, "finding" sentences ({p} = part name) and
# modality-specific openers.
PHRASES: dict[str, dict[str, dict[str, list[str]]]] = {
    "hr": {
        "head": {
            "normal": ["Uredan nalaz endokranija.", "Bez znakova svježeg intrakranijskog krvarenja.",
                       "Ventrikularni sustav uredne širine.", "Moždani parenhim uredne denzitete.",
                       "Srednja linija nije pomaknuta.", "Bez znakova ishemije."],
            "finding": ["Hipodenzna zona lijevo parijetalno, ishemijska lezija.", "Akutno subduralno krvarenje desno.",
                        "Stariji ishemijski infarkt u opskrbnom području ACM.", "Znakovi kronične mikroangiopatije.",
                        "Proširenje ventrikularnog sustava.", "Meningeom frontalno, promjera 2 cm."],
        },
        "skull": {
            "normal": ["Kosti lubanje bez traumatskih lezija.", "Paranazalni sinusi prozračni.",
                       "Bez znakova frakture kostiju lubanje."],
            "finding": ["Zadebljanje sluznice maksilarnog sinusa lijevo.", "Frakturna pukotina okcipitalne kosti.",
                        "Polip u maksilarnom sinusu desno.", "Sinusitis maksilaris obostrano."],
        },
        "chest": {
            "normal": ["Uredan nalaz prsnih organa.", "Bez znakova pneumonije.", "Plućni parenhim bez infiltrata.",
                       "Srce normalne veličine.", "Sinusi slobodni.", "Hilusi uredni.", "Pluća uredne prozračnosti."],
            "finding": ["Infiltrat u donjem desnom plućnom polju, pneumonija.", "Manji pleuralni izljev lijevo.",
                        "Kardiomegalija.", "Pneumotoraks desno.", "Znakovi zastoja u plućnom krvotoku.",
                        "Okrugla sjena u gornjem lijevom plućnom režnju, preporuča se CT.",
                        "Plućna embolija u segmentalnim ograncima desno."],
        },
        "coronary": {
            "normal": ["Koronarne arterije bez značajnih stenoza.", "Uredna koronarografija.",
                       "Desna koronarna arterija dominantna, bez stenoza."],
            "finding": ["Stenoza RIA 70%, učinjena PCI sa stentom.", "Okluzija ACD u proksimalnom segmentu.",
                        "Trožilna koronarna bolest.", "Stenoza RCx 50%."],
        },
        "breast": {
            "normal": ["Dojke simetrične, bez suspektnih lezija.", "BI-RADS 1.", "Fibroglandularni parenhim uredan."],
            "finding": ["Suspektna lezija u gornjem vanjskom kvadrantu lijeve dojke, BI-RADS 4.",
                        "Fibroadenom desne dojke.", "Ciste u obje dojke, BI-RADS 2."],
        },
        "neck": {
            "normal": ["Meka tkiva vrata uredna.", "Štitnjača uredne veličine.", "Bez uvećanih limfnih čvorova vrata."],
            "finding": ["Čvor u desnom režnju štitnjače.", "Uvećani limfni čvorovi vrata lijevo.",
                        "Struma multinodoza."],
        },
        "vessel": {
            "normal": ["Karotidne arterije bez hemodinamski značajnih stenoza.", "Uredan protok kroz karotide."],
            "finding": ["Stenoza ACI lijevo oko 80%.", "Aterosklerotski plak na bifurkaciji karotide desno.",
                        "Okluzija ACI desno.", "Učinjena PTA i stent ACI."],
        },
        "abdomen": {
            "normal": ["Jetra uredne veličine i strukture.", "Slezena, gušterača i bubrezi uredni.",
                       "Bez slobodne tekućine u abdomenu.", "Mokraćni mjehur uredan.", "Uredan nalaz abdomena."],
            "finding": ["Hipodenzna lezija jetre, hemangiom.", "Kolecistolitijaza.", "Slobodna tekućina u zdjelici.",
                        "Metastatske promjene jetre.", "Divertikuli sigme.", "Apendicitis."],
        },
        "git": {
            "normal": ["Uredna pasaža kontrasta kroz jednjak i želudac.", "Sluznica želuca uredna.",
                       "Duodenum uredan.", "Uredan nalaz irigografije."],
            "finding": ["Hijatalna hernija.", "Ulkus u bulbusu duodenuma.", "Divertikuloza kolona.",
                        "Stenoza jednjaka u distalnoj trećini.", "Gastroezofagealni refluks."],
        },
        "uro": {
            "normal": ["Bubrezi uredne veličine i funkcije.", "Kanalni sustav bubrega nije proširen.",
                       "Mokraćni mjehur glatkih stijenki.", "Uredno izlučivanje kontrasta."],
            "finding": ["Kamenac u desnom ureteru.", "Hidronefroza lijevo.", "Vezikoureteralni refluks.",
                        "Cista lijevog bubrega."],
        },
        "wholebody": {
            "normal": ["Bez znakova ozljede.", "Bez patološkog nakupljanja radiofarmaka.", "Uredan nalaz."],
            "finding": ["Politrauma, frakture rebara lijevo.", "Metastatske promjene skeleta.",
                        "Pojačano nakupljanje u L3 kralješku."],
        },
        "spine": {
            "normal": ["Kralješci uredne visine.", "Bez znakova frakture {p}.", "Uredna lordoza {p}."],
            "finding": ["Degenerativne promjene {p}.", "Protruzija diska {p}.", "Spondiloza {p}.",
                        "Kompresivna fraktura tijela kralješka {p}.", "Suženje intervertebralnog prostora {p}.",
                        "Hernija diska {p} s kompresijom korijena."],
        },
        "bone": {
            "normal": ["Bez znakova svježe frakture {p}.", "Koštane strukture {p} uredne.",
                       "Uredan odnos zglobnih tijela {p}.", "Bez traumatskih promjena {p}."],
            "finding": ["Frakturna pukotina {p}.", "Fraktura {p} bez pomaka.", "Fraktura {p} s pomakom ulomaka.",
                        "Artrotske promjene {p}.", "Osteopenija {p}.", "Ruptura prednjeg križnog ligamenta.",
                        "Degenerativne promjene medijalnog meniska.", "Izljev u zglobu {p}.",
                        "Stanje nakon osteosinteze {p}."],
        },
        "test": {"normal": ["Test.", "Kontrola kvalitete uredna.", "QA uredno."], "finding": ["Fantom."]},
    },
    "en": {
        "head": {
            "normal": ["Normal intracranial findings.", "No acute intracranial haemorrhage.",
                       "Ventricles of normal size.", "No midline shift.", "No signs of ischaemia."],
            "finding": ["Hypodense area left parietal, ischaemic lesion.", "Acute subdural haematoma on the right.",
                        "Old infarct in the MCA territory.", "Chronic small vessel disease.",
                        "Frontal meningioma, 2 cm."],
        },
        "skull": {
            "normal": ["No skull fracture.", "Paranasal sinuses clear."],
            "finding": ["Mucosal thickening of the left maxillary sinus.", "Occipital skull fracture.",
                        "Bilateral maxillary sinusitis."],
        },
        "chest": {
            "normal": ["Normal chest.", "No pneumonia.", "Lungs clear.", "Heart size normal.",
                       "Costophrenic angles clear."],
            "finding": ["Consolidation in the right lower zone, pneumonia.", "Small left pleural effusion.",
                        "Cardiomegaly.", "Right pneumothorax.", "Pulmonary venous congestion.",
                        "Nodule in the left upper lobe, CT recommended.",
                        "Segmental pulmonary embolism on the right."],
        },
        "coronary": {
            "normal": ["No significant coronary stenosis.", "Normal coronary angiography.", "Right dominant system."],
            "finding": ["LAD stenosis 70%, PCI with stent.", "Proximal RCA occlusion.", "Three-vessel disease.",
                        "Circumflex stenosis 50%."],
        },
        "breast": {
            "normal": ["Symmetric breasts, no suspicious lesion.", "BI-RADS 1."],
            "finding": ["Suspicious lesion in the left upper outer quadrant, BI-RADS 4.", "Fibroadenoma right breast."],
        },
        "neck": {
            "normal": ["Normal soft tissues of the neck.", "Thyroid of normal size."],
            "finding": ["Nodule in the right thyroid lobe.", "Enlarged cervical lymph nodes on the left."],
        },
        "vessel": {
            "normal": ["No haemodynamically significant carotid stenosis."],
            "finding": ["Left ICA stenosis about 80%.", "Plaque at the right carotid bifurcation.",
                        "Right ICA occlusion.", "ICA angioplasty and stenting performed."],
        },
        "abdomen": {
            "normal": ["Liver of normal size and structure.", "Spleen, pancreas and kidneys unremarkable.",
                       "No free fluid.", "Normal abdomen."],
            "finding": ["Hypodense liver lesion, haemangioma.", "Cholelithiasis.", "Free fluid in the pelvis.",
                        "Liver metastases.", "Sigmoid diverticula.", "Appendicitis."],
        },
        "git": {
            "normal": ["Normal passage of contrast through oesophagus and stomach.", "Normal barium enema."],
            "finding": ["Hiatal hernia.", "Duodenal bulb ulcer.", "Colonic diverticulosis.",
                        "Distal oesophageal stricture."],
        },
        "uro": {
            "normal": ["Kidneys of normal size and function.", "No hydronephrosis.", "Normal contrast excretion."],
            "finding": ["Right ureteric stone.", "Left hydronephrosis.", "Vesicoureteric reflux.", "Left renal cyst."],
        },
        "wholebody": {
            "normal": ["No injury.", "No pathological tracer uptake."],
            "finding": ["Polytrauma, left rib fractures.", "Skeletal metastases.", "Increased uptake in L3."],
        },
        "spine": {
            "normal": ["Vertebral bodies of normal height.", "No fracture of the {p}.", "Normal alignment of the {p}."],
            "finding": ["Degenerative changes of the {p}.", "Disc protrusion at {p}.", "Spondylosis of the {p}.",
                        "Compression fracture at {p}.", "Disc herniation at {p} with root compression."],
        },
        "bone": {
            "normal": ["No acute fracture of the {p}.", "Bony structures of the {p} intact.",
                       "Normal alignment of the {p}."],
            "finding": ["Hairline fracture of the {p}.", "Undisplaced fracture of the {p}.",
                        "Displaced fracture of the {p}.", "Osteoarthritis of the {p}.", "Osteopenia of the {p}.",
                        "ACL rupture.", "Degenerative medial meniscus.", "Joint effusion of the {p}.",
                        "Status post osteosynthesis of the {p}."],
        },
        "test": {"normal": ["Test.", "QA passed."], "finding": ["Phantom."]},
    },
}

OPENERS: dict[str, dict[str, list[str]]] = {
    "hr": {"CT": ["MSCT nativno:", "CT nakon i.v. aplikacije kontrasta:", "Učinjen CT."],
           "MR": ["MR snimanje u T1 i T2 mjerenim slikama.", "MR nativno i nakon kontrasta:"],
           "CR": ["RTG:", "Učinjena RTG snimka u dva smjera."], "XA": ["Angiografija:", "Učinjena DSA."],
           "RF": ["Dijaskopija:", "Pregled pod kontrolom dijaskopije."], "NM": ["Scintigrafija:"], "US": ["UZV:"]},
    "en": {"CT": ["Non-contrast CT:", "Contrast-enhanced CT:"], "MR": ["MRI, T1 and T2 weighted:"],
           "CR": ["Radiograph:", "Two views obtained."], "XA": ["Angiography:"], "RF": ["Fluoroscopy:"],
           "NM": ["Scintigraphy:"], "US": ["Ultrasound:"]},
}

SHORT: dict[str, list[str]] = {"hr": ["ok", "b.o.", "uredno", "-", "vidi", "isto"], "en": ["ok", "nad", "-", "see"]}
ABBREVIATIONS: dict[str, dict[str, str]] = {
    "hr": {"obostrano": "obostr.", "lijevo": "lij.", "desno": "desn.", "frakture": "fr.", "uredan": "ured."},
    "en": {"fracture": "fx", "bilateral": "bilat.", "left": "L", "right": "R"},
}


def diagnosis_text(part: str, modality: str, language: str, rng: np.random.Generator,
                   patient_id: str, study_date: str) -> str | None:
    """One exam's narrative diagnosis.

    Args:
        part: true body part of the exam.
        modality: exam modality.
        language: ``"hr"`` or ``"en"``.
        rng: random generator.
        patient_id: the patient's id, quoted in a few texts so scrubbing can be tested.
        study_date: ``YYYYMMDD``, quoted as a previous-exam date in a few texts.

    Returns:
        The text; ``""`` or a few characters for empty/too-short reports; ``None`` when the exam has
        no row in diagnoses.csv.
    """
    r = rng.random()
    if r < 0.04:
        return None
    if r < 0.09:
        return ""
    if r < 0.14:
        return str(SHORT[language][int(rng.integers(0, len(SHORT[language])))])
    family = PHRASES[language]["coronary" if (modality, part) == ("XA", "CHEST") else FAMILY[part]]
    names = PART_NAME[language].get(part, [""])
    sentences: list[str] = []
    if rng.random() < 0.5:
        openers = OPENERS[language][modality]
        sentences.append(openers[int(rng.integers(0, len(openers)))])
    abnormal = rng.random() < 0.55
    n_normal = int(rng.integers(1, 4))
    for idx in rng.choice(len(family["normal"]), size=min(n_normal, len(family["normal"])), replace=False):
        sentences.append(family["normal"][int(idx)])
    if abnormal:
        sentences.insert(int(rng.integers(0, len(sentences) + 1)),
                         family["finding"][int(rng.integers(0, len(family["finding"])))])
    text = " ".join(s.replace("{p}", names[int(rng.integers(0, len(names)))]) for s in sentences)
    for full, short in ABBREVIATIONS[language].items():
        if rng.random() < 0.3:
            text = re.sub(rf"\b{full}\b(?!\.)", short, text)
    text = typo(text, rng, 0.03)
    if rng.random() < 0.04:
        d = f"{study_date[6:8]}.{study_date[4:6]}.{int(study_date[:4]) - 1}."
        text += (f" Usporedba s prethodnim nalazom od {d} (MBO {patient_id})." if language == "hr"
                 else f" Compared with the previous study of {d} (ID {patient_id}).")
    if rng.random() < 0.1:
        text = text.lower()
    return text
