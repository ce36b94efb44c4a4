// Shared test steps of the panels (fakes at the network boundary are in fakes.js).
import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { expect } from 'vitest';
import { installFetch, jsonResponse } from './fakes.js';

/**
 * A panel shows a server error plainly: with the server answering `status` and the error
 * `{code, message}`, `render()` the panel and click its `submit` button; the `error` panel
 * reads "HTTP status · code: message." and no `table` is shown. Each panel's its.each of
 * error answers runs this.
 */
export async function expectPlainError({ status, code, message, render, submit, error, table }) {
  installFetch(() => jsonResponse(status, { error: { code, message, details: null } }));
  render();
  await userEvent.setup().click(screen.getByTestId(submit));
  expect(await screen.findByTestId(error)).toHaveTextContent(`HTTP ${status} · ${code}: ${message}.`);
  expect(screen.queryByTestId(table)).not.toBeInTheDocument();
}
