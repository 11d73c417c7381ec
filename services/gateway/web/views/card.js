// The card form's fields, shared by paying for a booking and subscribing, and what a card
// processor tells a customer for each decline code.

import { h } from "../dom.js";

export const DECLINES = {
  card_declined: "Your card was declined.",
  insufficient_funds: "Your card has insufficient funds.",
  expired_card: "Your card has expired.",
  incorrect_cvc: "Your card's security code is incorrect.",
  processing_error: "An error occurred while processing your card. Try again in a little bit.",
};

const field = (id, label, attrs) => h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, name: id, required: true, inputmode: "numeric", ...attrs }));

/// Number, expiry month and year (next year's, by default) and CVC, their ids under `prefix`.
export function cardFields(prefix) {
  const now = new Date();
  return [
    field(`${prefix}-number`, "Card number", { autocomplete: "cc-number", placeholder: "4242 4242 4242 4242" }),
    h(
      "div",
      { class: "actions" },
      field(`${prefix}-month`, "Month", { autocomplete: "cc-exp-month", size: 3, value: String(now.getMonth() + 1) }),
      field(`${prefix}-year`, "Year", { autocomplete: "cc-exp-year", size: 5, value: String(now.getFullYear() + 2) }),
      field(`${prefix}-cvc`, "CVC", { autocomplete: "cc-csc", size: 4 }),
    ),
  ];
}

/// The `payment_method` the API takes, from the fields under `prefix`.
export function cardOf(form, prefix) {
  const value = (name) => form.querySelector(`#${prefix}-${name}`).value.trim();
  return { type: "card", number: value("number").replace(/[\s-]/g, ""), exp_month: Number(value("month")), exp_year: Number(value("year")), cvc: value("cvc") };
}

/// A decline as the processor words it, or null when the error is not a decline.
export function declined(error) {
  const code = error?.problem?.failure_code;
  return code && DECLINES[code] ? DECLINES[code] : null;
}
