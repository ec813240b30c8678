//! One module per screen of the navigation bar.

pub mod audit;
pub mod calls;
pub mod deals;
pub mod inquiries;
pub mod missed;
pub mod people;
pub mod settings;
pub mod tasks;
pub mod team;

pub const ROW_HEIGHT: f32 = 22.0;

/// A filter button row: one selectable label per choice.
pub fn filter_ui<F: Copy + PartialEq>(
    ui: &mut egui::Ui,
    env: &super::Env<'_>,
    current: &mut F,
    choices: &[(F, &str)],
) -> bool {
    let mut changed = false;
    ui.horizontal(|ui| {
        for (value, key) in choices {
            if ui.selectable_label(*current == *value, env.tr(key)).clicked() && *current != *value {
                *current = *value;
                changed = true;
            }
        }
    });
    changed
}
