//! The material families the marketplace is tuned for, with their labels in the three
//! languages of the region, the units they are traded in and the waste codes they usually carry.

use crate::quantity::Unit;

/// A family of materials with its own listing form, units and buyers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MaterialFamily {
    Pallets,
    Packaging,
    Plastics,
    Metals,
    Solvents,
    Wood,
    Compost,
    Aggregates,
    ProcessWater,
}

/// The groups under which the families are presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MaterialGroup {
    Pallets,
    Packaging,
    /// Secondary raw materials: plastics, metals, solvents, wood, compost and aggregates.
    RegeneratedMaterials,
    ProcessWater,
}

/// A text in English, French and German.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    pub en: &'static str,
    pub fr: &'static str,
    pub de: &'static str,
}

/// The grade of a EUR/EPAL 1200x800 pallet. Pallets are exchanged like for like by grade, so
/// the grade is part of what is traded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PalletGrade {
    /// Never used.
    New,
    /// Used, bright wood, fit for any load.
    A,
    /// Used, darkened wood, fit for most loads.
    B,
    /// Used, dirty or repaired, fit for warehouse work.
    C,
    /// Mixed grades, not sorted.
    Unsorted,
}

impl MaterialFamily {
    /// The usual recovery operation of a family (Annex II of Directive 2008/98/EC):
    ///
    /// | family | code | operation |
    /// |---|---|---|
    /// | pallets, packaging, plastics, wood | R3 | recycling of organic substances not used as solvents: wooden pallets repaired or chipped, cardboard, plastics |
    /// | metals | R4 | recycling of metals and metal compounds |
    /// | solvents | R2 | solvent reclamation and regeneration |
    /// | compost | R10 | land treatment resulting in benefit to agriculture |
    /// | aggregates | R5 | recycling of other inorganic materials (crushed concrete, bricks) |
    /// | process water | R5 | water is an inorganic material reclaimed for use |
    ///
    /// A lot may go another way (metal packaging is R4, composting of biowaste R3): who ships it
    /// says so where it matters (the Annex VII document).
    pub fn recovery_operation(self) -> &'static str {
        match self {
            MaterialFamily::Pallets
            | MaterialFamily::Packaging
            | MaterialFamily::Plastics
            | MaterialFamily::Wood => "R3",
            MaterialFamily::Metals => "R4",
            MaterialFamily::Solvents => "R2",
            MaterialFamily::Compost => "R10",
            MaterialFamily::Aggregates | MaterialFamily::ProcessWater => "R5",
        }
    }

    pub const ALL: [MaterialFamily; 9] = [
        MaterialFamily::Pallets,
        MaterialFamily::Packaging,
        MaterialFamily::Plastics,
        MaterialFamily::Metals,
        MaterialFamily::Solvents,
        MaterialFamily::Wood,
        MaterialFamily::Compost,
        MaterialFamily::Aggregates,
        MaterialFamily::ProcessWater,
    ];

    /// A stable key for storage and URLs, such as `process_water`.
    pub fn key(self) -> &'static str {
        match self {
            MaterialFamily::Pallets => "pallets",
            MaterialFamily::Packaging => "packaging",
            MaterialFamily::Plastics => "plastics",
            MaterialFamily::Metals => "metals",
            MaterialFamily::Solvents => "solvents",
            MaterialFamily::Wood => "wood",
            MaterialFamily::Compost => "compost",
            MaterialFamily::Aggregates => "aggregates",
            MaterialFamily::ProcessWater => "process_water",
        }
    }

    /// The family of a key, exactly as `key` writes it.
    pub fn from_key(key: &str) -> Option<MaterialFamily> {
        MaterialFamily::ALL.into_iter().find(|family| family.key() == key)
    }

    pub fn group(self) -> MaterialGroup {
        match self {
            MaterialFamily::Pallets => MaterialGroup::Pallets,
            MaterialFamily::Packaging => MaterialGroup::Packaging,
            MaterialFamily::Plastics
            | MaterialFamily::Metals
            | MaterialFamily::Solvents
            | MaterialFamily::Wood
            | MaterialFamily::Compost
            | MaterialFamily::Aggregates => MaterialGroup::RegeneratedMaterials,
            MaterialFamily::ProcessWater => MaterialGroup::ProcessWater,
        }
    }

    /// The name of the family.
    pub fn labels(self) -> Labels {
        match self {
            MaterialFamily::Pallets => Labels {
                en: "EUR pallets and other pallets",
                fr: "Palettes EUR et autres palettes",
                de: "EUR-Paletten und andere Paletten",
            },
            MaterialFamily::Packaging => Labels {
                en: "Industrial packaging",
                fr: "Emballages industriels",
                de: "Industrieverpackungen",
            },
            MaterialFamily::Plastics => {
                Labels { en: "Recycled plastics", fr: "Plastiques recyclés", de: "Kunststoff-Rezyklate" }
            }
            MaterialFamily::Metals => {
                Labels { en: "Metals and scrap", fr: "Métaux et ferrailles", de: "Metalle und Schrott" }
            }
            MaterialFamily::Solvents => Labels { en: "Solvents", fr: "Solvants", de: "Lösemittel" },
            MaterialFamily::Wood => Labels {
                en: "Wood and wood chips",
                fr: "Bois et plaquettes de bois",
                de: "Holz und Hackschnitzel",
            },
            MaterialFamily::Compost => Labels { en: "Compost", fr: "Compost", de: "Kompost" },
            MaterialFamily::Aggregates => Labels {
                en: "Recycled aggregates",
                fr: "Granulats recyclés",
                de: "Recycling-Gesteinskörnungen",
            },
            MaterialFamily::ProcessWater => Labels {
                en: "Treated process water",
                fr: "Eau de process traitée",
                de: "Aufbereitetes Prozesswasser",
            },
        }
    }

    /// One line on what the family covers.
    pub fn description(self) -> Labels {
        match self {
            MaterialFamily::Pallets => Labels {
                en: "EUR/EPAL 1200x800 pallets graded new, A, B, C or unsorted, and pallets of other sizes",
                fr: "Palettes EUR/EPAL 1200x800 en qualité neuve, A, B, C ou non triée, et palettes d'autres dimensions",
                de: "EUR/EPAL-Paletten 1200x800 in den Qualitäten neu, A, B, C oder unsortiert sowie Paletten anderer Maße",
            },
            MaterialFamily::Packaging => Labels {
                en: "Cardboard, film, IBCs, drums and crates for reuse or recycling",
                fr: "Carton, film, GRV (IBC), fûts et caisses pour réemploi ou recyclage",
                de: "Karton, Folie, IBC, Fässer und Kisten zur Wiederverwendung oder zum Recycling",
            },
            MaterialFamily::Plastics => Labels {
                en: "rPET, rHDPE, rPP and rLDPE as flakes or pellets",
                fr: "rPET, rPEHD, rPP et rPEBD en paillettes ou en granulés",
                de: "rPET, rHDPE, rPP und rLDPE als Flakes oder Granulat",
            },
            MaterialFamily::Metals => Labels {
                en: "Ferrous and non-ferrous scrap: steel, aluminium, copper, brass, turnings and filings",
                fr: "Ferrailles et métaux non ferreux : acier, aluminium, cuivre, laiton, copeaux et limailles",
                de: "Eisen- und Nichteisenschrott: Stahl, Aluminium, Kupfer, Messing, Späne",
            },
            MaterialFamily::Solvents => Labels {
                en: "Spent solvents for regeneration and regenerated solvents",
                fr: "Solvants usagés à régénérer et solvants régénérés",
                de: "Altlösemittel zur Aufbereitung und aufbereitete Lösemittel",
            },
            MaterialFamily::Wood => Labels {
                en: "Wood chips, sawdust, offcuts and waste wood",
                fr: "Plaquettes, sciure, chutes et bois de rebut",
                de: "Hackschnitzel, Sägemehl, Verschnitt und Altholz",
            },
            MaterialFamily::Compost => Labels {
                en: "Compost from biodegradable waste, for farming and landscaping",
                fr: "Compost issu de déchets biodégradables, pour l'agriculture et les espaces verts",
                de: "Kompost aus biologisch abbaubaren Abfällen für Landwirtschaft und Landschaftsbau",
            },
            MaterialFamily::Aggregates => Labels {
                en: "Crushed concrete, bricks, sand and stones for construction",
                fr: "Béton concassé, briques, sables et pierres pour la construction",
                de: "Betonbruch, Ziegel, Sand und Steine für das Bauwesen",
            },
            MaterialFamily::ProcessWater => Labels {
                en: "Industrial process water treated for reuse, such as cooling or washing water",
                fr: "Eau de process industrielle traitée pour réutilisation, comme eau de refroidissement ou de lavage",
                de: "Für die Wiederverwendung aufbereitetes Prozesswasser, etwa Kühl- oder Waschwasser",
            },
        }
    }

    /// The units a listing of the family may use.
    pub fn units(self) -> &'static [Unit] {
        match self {
            MaterialFamily::Pallets => &[Unit::Piece, Unit::Pallet],
            MaterialFamily::Packaging => &[Unit::Piece, Unit::Pallet, Unit::Kilogram, Unit::Tonne],
            MaterialFamily::Plastics | MaterialFamily::Metals | MaterialFamily::Wood => {
                &[Unit::Kilogram, Unit::Tonne]
            }
            // Bulk materials sold by the load are measured by volume as often as by weight.
            MaterialFamily::Compost | MaterialFamily::Aggregates => {
                &[Unit::Kilogram, Unit::Tonne, Unit::CubicMetre]
            }
            MaterialFamily::Solvents => &[Unit::Litre, Unit::CubicMetre, Unit::Kilogram, Unit::Tonne],
            MaterialFamily::ProcessWater => &[Unit::CubicMetre, Unit::Litre],
        }
    }

    /// Codes of the List of Waste that listings of the family usually carry, when the material
    /// is still waste. A suggestion for the producer, who chooses; every code is in the list.
    pub fn typical_waste_codes(self) -> &'static [&'static str] {
        match self {
            MaterialFamily::Pallets => &["150103"],
            MaterialFamily::Packaging => &["150101", "150102", "150104", "150105", "150106", "150110"],
            MaterialFamily::Plastics => &["070213", "120105", "160119", "191204", "200139"],
            MaterialFamily::Metals => &[
                "120101", "120102", "120103", "120104", "170401", "170402", "170405", "191202", "191203",
                "200140",
            ],
            MaterialFamily::Solvents => &["070104", "070204", "140602", "140603"],
            MaterialFamily::Wood => &["030105", "170201", "191207", "200138"],
            MaterialFamily::Compost => &["190503", "200201"],
            MaterialFamily::Aggregates => &["170101", "170102", "170107", "170504", "191209"],
            MaterialFamily::ProcessWater => &["161002", "161004", "191308"],
        }
    }

    pub fn fits_unit(self, unit: Unit) -> bool {
        self.units().contains(&unit)
    }
}

impl MaterialGroup {
    pub const ALL: [MaterialGroup; 4] = [
        MaterialGroup::Pallets,
        MaterialGroup::Packaging,
        MaterialGroup::RegeneratedMaterials,
        MaterialGroup::ProcessWater,
    ];

    /// A stable key for storage and URLs, such as `regenerated_materials`.
    pub fn key(self) -> &'static str {
        match self {
            MaterialGroup::Pallets => "pallets",
            MaterialGroup::Packaging => "packaging",
            MaterialGroup::RegeneratedMaterials => "regenerated_materials",
            MaterialGroup::ProcessWater => "process_water",
        }
    }

    pub fn from_key(key: &str) -> Option<MaterialGroup> {
        MaterialGroup::ALL.into_iter().find(|group| group.key() == key)
    }

    pub fn labels(self) -> Labels {
        match self {
            MaterialGroup::Pallets => Labels { en: "Pallets", fr: "Palettes", de: "Paletten" },
            MaterialGroup::Packaging => Labels { en: "Packaging", fr: "Emballages", de: "Verpackungen" },
            MaterialGroup::RegeneratedMaterials => {
                Labels {
                    en: "Regenerated materials", fr: "Matières régénérées", de: "Sekundärrohstoffe"
                }
            }
            MaterialGroup::ProcessWater => {
                Labels { en: "Process water", fr: "Eau de process", de: "Prozesswasser" }
            }
        }
    }

    /// The families of the group, in the order of `MaterialFamily::ALL`.
    pub fn families(self) -> impl Iterator<Item = MaterialFamily> {
        MaterialFamily::ALL.into_iter().filter(move |family| family.group() == self)
    }
}

impl PalletGrade {
    pub const ALL: [PalletGrade; 5] =
        [PalletGrade::New, PalletGrade::A, PalletGrade::B, PalletGrade::C, PalletGrade::Unsorted];

    /// A stable key: `new`, `a`, `b`, `c`, `unsorted`.
    pub fn key(self) -> &'static str {
        match self {
            PalletGrade::New => "new",
            PalletGrade::A => "a",
            PalletGrade::B => "b",
            PalletGrade::C => "c",
            PalletGrade::Unsorted => "unsorted",
        }
    }

    pub fn from_key(key: &str) -> Option<PalletGrade> {
        PalletGrade::ALL.into_iter().find(|grade| grade.key() == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waste::WasteCode;

    #[test]
    fn keys_round_trip() {
        for family in MaterialFamily::ALL {
            assert_eq!(MaterialFamily::from_key(family.key()), Some(family));
        }
        for group in MaterialGroup::ALL {
            assert_eq!(MaterialGroup::from_key(group.key()), Some(group));
        }
        for grade in PalletGrade::ALL {
            assert_eq!(PalletGrade::from_key(grade.key()), Some(grade));
        }
        assert_eq!(MaterialFamily::from_key("process_water"), Some(MaterialFamily::ProcessWater));
        assert_eq!(MaterialFamily::from_key("Pallets"), None);
        assert_eq!(PalletGrade::from_key("d"), None);
    }

    #[test]
    fn every_typical_waste_code_is_in_the_list() {
        for family in MaterialFamily::ALL {
            assert!(!family.typical_waste_codes().is_empty(), "{family:?}");
            for code in family.typical_waste_codes() {
                let parsed = WasteCode::parse(code).unwrap_or_else(|error| panic!("{family:?}: {error}"));
                assert_eq!(parsed.as_str(), *code);
            }
        }
        let wooden_packaging = WasteCode::parse(MaterialFamily::Pallets.typical_waste_codes()[0]);
        assert_eq!(wooden_packaging.unwrap().entry().description, "Wooden packaging");
    }

    #[test]
    fn units_fit_the_family() {
        use MaterialFamily::*;
        assert!(Pallets.fits_unit(Unit::Pallet) && Pallets.fits_unit(Unit::Piece));
        assert!(!Pallets.fits_unit(Unit::Kilogram));
        assert!(Packaging.fits_unit(Unit::Tonne));
        assert!(Aggregates.fits_unit(Unit::CubicMetre) && Compost.fits_unit(Unit::CubicMetre));
        assert!(!Plastics.fits_unit(Unit::CubicMetre));
        assert!(Solvents.fits_unit(Unit::Litre) && Solvents.fits_unit(Unit::Tonne));
        assert_eq!(ProcessWater.units(), [Unit::CubicMetre, Unit::Litre]);
        assert!(!ProcessWater.fits_unit(Unit::Tonne));
        for family in MaterialFamily::ALL {
            let units = family.units();
            assert!(!units.is_empty());
            for (index, unit) in units.iter().enumerate() {
                assert!(!units[..index].contains(unit), "{family:?} lists {unit} twice");
            }
        }
    }

    #[test]
    fn groups_gather_the_families() {
        let regenerated: Vec<MaterialFamily> = MaterialGroup::RegeneratedMaterials.families().collect();
        assert_eq!(regenerated.len(), 6);
        assert_eq!(MaterialFamily::ProcessWater.group(), MaterialGroup::ProcessWater);
        let total: usize = MaterialGroup::ALL.iter().map(|group| group.families().count()).sum();
        assert_eq!(total, MaterialFamily::ALL.len());
    }

    #[test]
    fn every_label_and_description_is_written_in_each_language() {
        let pallets = MaterialFamily::Pallets.labels();
        assert_eq!(pallets.fr, "Palettes EUR et autres palettes");
        assert_eq!(MaterialFamily::ProcessWater.labels().de, "Aufbereitetes Prozesswasser");
        for family in MaterialFamily::ALL {
            for labels in [family.labels(), family.description()] {
                for text in [labels.en, labels.fr, labels.de] {
                    assert!(!text.trim().is_empty(), "{family:?}");
                }
            }
        }
        assert!(MaterialFamily::Plastics.description().en.contains("rHDPE"));
    }
}
