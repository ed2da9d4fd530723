// ESLint for the project's browser code: the upload page (web/src) and the notebook
// widgets' sources (streamify_notebook/js) with the bundle anywidget loads
// (streamify_notebook/widget.js), plus the node scripts and tests beside them.
// Run from web/: `npm run lint` (it lints from the repository root, so both trees are in).
import js from '@eslint/js'
import globals from 'globals'

export default [
  {
    ignores: ['**/node_modules/', 'core/streamify/server/static/'],
  },
  {
    files: ['web/src/**/*.js', 'streamify_notebook/js/**/*.js', 'streamify_notebook/widget.js'],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: globals.browser,
    },
  },
  {
    files: ['web/*.js', 'web/*.mjs', 'web/test/**/*.mjs', 'streamify_notebook/js/*.mjs',
      'streamify_notebook/js/test/**/*.mjs'],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: globals.node,
    },
  },
]
